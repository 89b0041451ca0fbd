"""real_pickles.py - pickles that Debian's python3 and numpy really write
for the objects of the official Grok-1 checkpoint, for the tests of the
strict reader (src/convert/pickle.c). Nothing here builds a byte stream by
hand: a real @dataclass QuantizedWeight8bit defined in __main__ (as the
official checkpoint.py registers it) holding real numpy arrays, the scales
of the dtype ml_dtypes.bfloat16, which must be importable (the real package,
or tests/pickle/ml_dtypes.c built by pickle_real_test.sh), pickled by
pickle.dump.

Commands:
  real_pickles.py fixtures
      prints the C arrays test_pickle.c embeds (QW8, QW8_P3, F32)
  real_pickles.py check-fixtures tests/test_pickle.c
      checks that the arrays test_pickle.c embeds are what is written now
  real_pickles.py bad DIR
      writes real pickles the reader must refuse, one per file, and prints
      "FILE<TAB>what the error must say" for each
"""

import dataclasses
import os
import pickle
import re
import sys

import numpy as np
import ml_dtypes


@dataclasses.dataclass
class QuantizedWeight8bit:
    weight: object
    scales: object


def bf16(values):
    """A real ml_dtypes.bfloat16 array of exactly representable values."""
    bits = (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2")
    return bits.view(ml_dtypes.bfloat16)


def qw8(weight=None, scales=None):
    w = np.arange(-6, 6, dtype=np.int8).reshape(4, 3) if weight is None else weight
    s = bf16([[1.0, 2.0, 3.0]]) if scales is None else scales
    return QuantizedWeight8bit(w, s)


def fixtures():
    """The three fixtures of test_pickle.c, as bytes."""
    return {
        "QW8": pickle.dumps(qw8(), protocol=4),
        "QW8_P3": pickle.dumps(qw8(), protocol=3),
        "F32": pickle.dumps(np.array([1.5, -2.0, 3.25], dtype=np.float32), protocol=4),
    }


def c_array(name, data):
    body = ", ".join("0x%02x" % b for b in data)
    return "static const uint8_t %s[%d] = {%s};" % (name, len(data), body)


def cmd_check_fixtures(path):
    text = open(path).read()
    bad = 0
    for name, data in fixtures().items():
        m = re.search(r"static const uint8_t %s\[(\d+)\] = \{([^}]*)\};" % name, text)
        if not m:
            print("FAIL %s: no array %s" % (path, name))
            bad += 1
            continue
        got = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", m.group(2)))
        if got != data or int(m.group(1)) != len(data):
            print("FAIL %s: %s differs from what pickle.dump writes now (%d bytes, embedded %d); "
                  "regenerate with real_pickles.py fixtures" % (path, name, len(data), len(got)))
            bad += 1
        else:
            print("ok   %s: %s is what python3 %s and numpy %s write (%d bytes)" % (
                os.path.basename(path), name, sys.version.split()[0], np.__version__, len(data)))
    return 1 if bad else 0


def rational():
    try:
        from numpy.core._rational_tests import rational as r
    except ImportError:  # numpy >= 2
        from numpy._core._rational_tests import rational as r
    return r


def slots_qw8():
    """The same object of a QuantizedWeight8bit declared with slots=True,
    which Python 3.11 pickles with the state (None, {field: value})."""
    @dataclasses.dataclass(slots=True)
    class QuantizedWeight8bit:  # noqa: F811 - the name is what gets pickled
        weight: object
        scales: object
    QuantizedWeight8bit.__qualname__ = "QuantizedWeight8bit"
    q = qw8()
    return QuantizedWeight8bit(q.weight, q.scales)


def cmd_bad(out):
    os.makedirs(out, exist_ok=True)
    cases = []

    def put(name, obj, want, protocol=4):
        with open(os.path.join(out, name), "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        cases.append((name, want))

    put("proto2", qw8(), "pickle protocol 2 (3 or 4 expected)", protocol=2)
    if pickle.HIGHEST_PROTOCOL >= 5:
        put("proto5", qw8(), "pickle protocol 5 (3 or 4 expected)", protocol=5)
    put("float64", np.zeros(4, dtype=np.float64), "dtype 'f8' is not allowed")
    put("float16", np.zeros(4, dtype=np.float16), "dtype 'f2' is not allowed")
    put("bigendian", np.zeros(4, dtype=">f4"), "float32 dtype state is not (3, '<'")
    put("fortran", np.asfortranarray(np.zeros((2, 3), dtype=np.float32)), "C order")
    put("object", np.array([1, "a"], dtype=object), "not allowed")
    put("rational_scales", qw8(scales=np.zeros((1, 3), dtype=rational())),
        "_rational_tests.rational' is not allowed")
    put("f32_scales", qw8(scales=np.ones((1, 3), dtype=np.float32)), "scales are float32, not bfloat16")
    put("bf16_weight", qw8(weight=bf16(np.ones((4, 3)))), "weight is bfloat16, not int8")
    # pickle finds a class by its name: the slots class stands in __main__
    # while it is pickled
    main = sys.modules["__main__"]
    plain, main.QuantizedWeight8bit = main.QuantizedWeight8bit, type(slots_qw8())
    put("slots_dataclass", main.QuantizedWeight8bit(*dataclasses.astuple(qw8())),
        "QuantizedWeight8bit state is not a dict of weight and scales")
    main.QuantizedWeight8bit = plain
    put("list", [np.zeros(2, dtype=np.float32)], "not allowed")
    put("scalar_bf16", bf16(np.ones(3))[0], "not allowed")
    for name, want in cases:
        print("%s\t%s" % (name, want))
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "fixtures":
        for name, data in fixtures().items():
            print(c_array(name, data))
        return 0
    if len(argv) == 3 and argv[1] == "check-fixtures":
        return cmd_check_fixtures(argv[2])
    if len(argv) == 3 and argv[1] == "bad":
        return cmd_bad(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
