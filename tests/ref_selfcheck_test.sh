#!/bin/bash
# ref_selfcheck_test.sh - checks the Python reference (GGUF reader, random
# model writer, float64 forward pass) against itself before it is used as
# the oracle for the C engine's logits: round trips, known bytes, split
# files, RoPE properties, batched vs incremental forward, PAD masking.
set -u
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy' 2>/dev/null; then
    echo "SKIP: $PY has no numpy"
    exit 77
fi
mkdir -p "${GROK_TMP:?GROK_TMP not set}"
exec "$PY" "${GROK_SRC:?GROK_SRC not set}/tests/ref/selfcheck.py"
