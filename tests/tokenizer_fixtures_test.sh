#!/usr/bin/env bash
# tokenizer_fixtures_test.sh - the committed tokenizer fixtures are what
# Debian's sentencepiece 0.1.97 gives today: regenerates them and compares
# (skips when the model in ../shared or python3-sentencepiece is missing).
: "${GROK_SRC:?}"
exec /usr/bin/python3 "$GROK_SRC/tests/gen_tokenizer_fixtures.py" --check
