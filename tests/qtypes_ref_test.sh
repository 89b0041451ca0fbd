#!/bin/bash
# qtypes_ref_test.sh - the NumPy decoders of tests/ref/gguf_reader.py for
# the types of src/kernels/qtypes.h against ggml's decoders, through the
# digests of tests/test_qtypes.c (tests/ref/qtypes_check.py), before
# logits_ref_test uses them as the oracle for files of those types.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP: $PY has no numpy"
    exit 77
fi
exec "$PY" "${GROK_SRC:?GROK_SRC not set}/tests/ref/qtypes_check.py" "$GROK_SRC"
