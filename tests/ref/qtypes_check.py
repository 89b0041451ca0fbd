"""qtypes_check.py - the NumPy decoders of gguf_reader.py against ggml's,
for the types of src/kernels/qtypes.h: the random blocks of
tests/qtypes_blocks.h (splitmix64 bytes, finite f16 scales), made here
again in Python, decoded by gguf_reader.dequantize and hashed (FNV-1a over
the float32 bits), must give the digests that ggml's decoders gave on the
same blocks, which tests/test_qtypes.c lists (read from that file, so the
two checks share one table).

  /usr/bin/python3 tests/ref/qtypes_check.py [REPO]
"""

import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reader  # noqa: E402

M64 = (1 << 64) - 1
# byte offsets of each type's f16 fields (qt_f16_fields in qtypes_blocks.h)
F16_AT = {"q4_1": (0, 2), "q5_1": (0, 2), "q5_0": (0,), "iq4_nl": (0,), "iq4_xs": (0,), "q1_0": (0,),
          "q2_0": (0,), "q2_K": (80, 82), "q3_K": (108,), "tq1_0": (52,), "tq2_0": (64,), "mxfp4": (),
          "nvfp4": ()}


def splitmix64(seed, count):
    out = []
    s = seed
    for _ in range(count):
        s = (s + 0x9E3779B97F4A7C15) & M64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        out.append(z ^ (z >> 31))
    return out


def random_blocks(name, nblocks, seed):
    """qt_random_blocks(type, nblocks, seed, moderate = false)."""
    tid = next(k for k, v in gguf_reader.GGML_TYPES.items() if v[0] == name)
    bs = gguf_reader.GGML_TYPES[tid][2]
    per = (bs + 7) // 8
    words = np.array(splitmix64(seed, nblocks * per), dtype="<u8").reshape(nblocks, per)
    blocks = words.view(np.uint8).reshape(nblocks, per * 8)[:, :bs].copy()
    for at in F16_AT[name]:
        h = blocks[:, at].astype(np.uint16) | (blocks[:, at + 1].astype(np.uint16) << 8)
        h = np.where((h & 0x7C00) == 0x7C00, h ^ 0x4000, h)
        blocks[:, at] = h & 255
        blocks[:, at + 1] = h >> 8
    return tid, blocks.reshape(-1)


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def main(argv):
    repo = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    src = open(os.path.join(repo, "tests", "test_qtypes.c")).read()
    digests = re.findall(r'\{"(\w+)", (0x[0-9a-f]+)ull\}', src)
    if len(digests) < 13:
        print("FAIL: found %d digests in tests/test_qtypes.c" % len(digests))
        return 1
    fails = 0
    for name, want in digests:
        tid = next(k for k, v in gguf_reader.GGML_TYPES.items() if v[0] == name)
        tid, raw = random_blocks(name, 65536 // gguf_reader.GGML_TYPES[tid][1], 77 + tid)  # seed 77 + type
        y = gguf_reader.dequantize(raw, tid, 65536).astype("<f4")
        got = fnv1a(y.tobytes())
        ok = got == int(want, 16)
        fails += not ok
        print("%s %-7s digest 0x%016x%s" % ("ok  " if ok else "FAIL", name, got, "" if ok else ", ggml's " + want))
    print("all NumPy decoders match ggml's digests" if fails == 0 else "%d type(s) differ" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
