"""corrupt_gguf.py - writes a copy of a GGUF model with one value made NaN
or Inf, for tests/nonfinite_test.sh. The tensor is found with the
independent NumPy reader (tests/ref/gguf_reader.py), not the C loader.

  corrupt_gguf.py IN OUT TENSOR BLOCK nan|inf|-inf
      f32 / f16 / bf16: element BLOCK becomes the value; a block type: the
      f16 scale d of block BLOCK where ggml's layout puts it: the first field
      (q8_0, q4_0, q4_1, q5_0, q5_1, Q4_K, Q5_K, IQ4_NL, IQ4_XS and the
      i-quants but IQ1_M, which has no d field), the last (Q6_K, Q3_K,
      TQ1_0, TQ2_0), or d before dmin at the end (Q2_K); MXFP4's E8M0
      exponent byte set to 0xFF (nan only: ggml reads it as 2^127, not as
      the MX spec's NaN, so the block's values of magnitude 2 and more
      overflow to Inf). Prints the byte offset of
      the block, in OUT.
"""

import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
import gguf_reader  # noqa: E402

F16 = {"nan": 0x7E00, "inf": 0x7C00, "-inf": 0xFC00}
BF16 = {"nan": 0x7FC0, "inf": 0x7F80, "-inf": 0xFF80}
F32 = {"nan": 0x7FC00000, "inf": 0x7F800000, "-inf": 0xFF800000}


def main(argv):
    src, dst, name, block, what = argv[1], argv[2], argv[3], int(argv[4]), argv[5]
    g = gguf_reader.GGUFFile(src)
    t = g.tensors[name]
    tname, bs, ts = gguf_reader.GGML_TYPES[t.type]
    base = t.data_start + t.offset
    if tname == "f32":
        off, data = base + 4 * block, struct.pack("<I", F32[what])
    elif tname == "f16":
        off, data = base + 2 * block, struct.pack("<H", F16[what])
    elif tname == "bf16":
        off, data = base + 2 * block, struct.pack("<H", BF16[what])
    elif tname in ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_K", "q5_K", "iq4_nl", "iq4_xs", "iq2_xxs",
                   "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s"):
        off, data = base + ts * block, struct.pack("<H", F16[what])
    elif tname in ("q6_K", "q3_K", "tq1_0", "tq2_0"):
        off, data = base + ts * block + ts - 2, struct.pack("<H", F16[what])
    elif tname == "q2_K":
        off, data = base + ts * block + ts - 4, struct.pack("<H", F16[what])
    elif tname == "mxfp4" and what == "nan":
        off, data = base + ts * block, b"\xff"
    else:
        raise SystemExit("corrupt_gguf: type %s is not handled" % tname)
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as f:
        f.seek(off)
        f.write(data)
    print(ts * block + base if tname not in ("f32", "f16", "bf16") else off)


if __name__ == "__main__":
    main(sys.argv)
