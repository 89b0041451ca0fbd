#!/bin/bash
# tokenizer_cli_test.sh - `grok tokenize` and `grok detokenize` against
# sentencepiece's own spm_encode/spm_decode on the same inputs: the ids of
# TEXT arguments and of -f files (bytes exact, invalid UTF-8 included) must
# equal spm_encode --output_format=id, and detokenize must give back the
# text (and equal spm_decode). Also the error paths: a bad id exits 2.
# Skips (77) without ../shared/tokenizers/grok-1.model or spm_encode.
set -u
MODEL="$GROK_SRC/../shared/tokenizers/grok-1.model"
if [ ! -f "$MODEL" ]; then echo "SKIP: $MODEL not found"; exit 77; fi
if ! command -v spm_encode >/dev/null; then echo "SKIP: spm_encode not installed"; exit 77; fi
mkdir -p "$GROK_TMP"
fail=0
n=0

check_text() { # TEXT: argument form and -f form against spm_encode
    local text="$1" want got gotf
    printf '%s' "$text" > "$GROK_TMP/in.txt"
    # spm_encode reads lines; these inputs have no newline, so one line.
    want=$(spm_encode --model "$MODEL" --output_format=id < "$GROK_TMP/in.txt")
    got=$("$GROK" tokenize --tokenizer "$MODEL" --ids "$text")
    gotf=$("$GROK" tokenize --tokenizer "$MODEL" --ids -f "$GROK_TMP/in.txt")
    n=$((n + 1))
    if [ "$got" != "$want" ] || [ "$gotf" != "$want" ]; then
        echo "FAIL: tokenize '$text': got '$got' / -f '$gotf', spm_encode '$want'"
        fail=1
        return
    fi
    local back spmback
    # shellcheck disable=SC2086
    back=$("$GROK" detokenize --tokenizer "$MODEL" --raw $got; echo x)
    spmback=$(echo "$want" | spm_decode --model "$MODEL" --input_format=id; echo x)
    if [ "${back%x}" != "$text" ] || [ "${back%x}" != "${spmback%?x}" ]; then
        echo "FAIL: detokenize of '$text' gave '${back%x}' (spm_decode '${spmback%?x}')"
        fail=1
    fi
}

check_text "The answer to life the universe and everything is of course"
check_text "Hello, world!"
check_text "  leading and   inner   spaces  "
check_text "tabs	and		more			tabs"
check_text "digits 1234567890 and 3.14159 and -42"
check_text "日本語のテキスト 中文 한국어 مرحبا Привет"
check_text "emoji 😀🙂 👨‍👩‍👧‍👦 🇺🇸"
check_text "<|separator|> <|mask|> [BOS] <0x41> [UNK]"
check_text "https://example.com/a/b?c=d&e=f#g"
check_text "int main(void) { return 0; }"
check_text "a"

# Files with bytes that are not valid UTF-8 (no newline, so spm_encode
# sees the same single line).
printf 'a\xffb\xe2\x82 c\xc0\xaf \xed\xa0\x80 ok' > "$GROK_TMP/bad.bin"
want=$(spm_encode --model "$MODEL" --output_format=id < "$GROK_TMP/bad.bin")
got=$("$GROK" tokenize --tokenizer "$MODEL" --ids -f "$GROK_TMP/bad.bin")
n=$((n + 1))
[ "$got" = "$want" ] || { echo "FAIL: invalid UTF-8 file: got '$got', spm_encode '$want'"; fail=1; }

# A file with newlines: spm_encode works line by line, so compare each line.
printf 'first line\nsecond  line\n\nfourth 42' > "$GROK_TMP/lines.txt"
while IFS= read -r line || [ -n "$line" ]; do
    [ -z "$line" ] && continue
    check_text "$line"
done < "$GROK_TMP/lines.txt"
# ... and the whole file, newlines included, keeps its bytes (round trip).
ids=$("$GROK" tokenize --tokenizer "$MODEL" --ids -f "$GROK_TMP/lines.txt")
# shellcheck disable=SC2086
"$GROK" detokenize --tokenizer "$MODEL" --raw $ids > "$GROK_TMP/lines.out"
cmp -s "$GROK_TMP/lines.txt" "$GROK_TMP/lines.out" || { echo "FAIL: -f file with newlines does not round-trip"; fail=1; }

# Piece listing: ID<TAB>PIECE per line, ids and pieces as spm_encode gives them.
printf 'Piece listing, a b' > "$GROK_TMP/p.txt"
want=$(paste <(spm_encode --model "$MODEL" --output_format=id < "$GROK_TMP/p.txt" | tr ' ' '\n') \
             <(spm_encode --model "$MODEL" --output_format=piece < "$GROK_TMP/p.txt" | tr ' ' '\n'))
out=$("$GROK" tokenize --tokenizer "$MODEL" -f "$GROK_TMP/p.txt")
[ "$out" = "$want" ] || { echo "FAIL: piece listing: '$out', spm_encode: '$want'"; fail=1; }

# Comma-separated ids.
out=$("$GROK" detokenize --tokenizer "$MODEL" "422,3033,356")
[ "$out" = "The answer to" ] || { echo "FAIL: comma ids gave '$out'"; fail=1; }

# Errors: out-of-range id, bad id text, missing tokenizer, unknown flag.
for args in "999999" "-1" "12x" ; do
    "$GROK" detokenize --tokenizer "$MODEL" $args > /dev/null 2> "$GROK_TMP/err.txt"
    rc=$?
    if [ $rc -ne 2 ] || [ ! -s "$GROK_TMP/err.txt" ]; then
        echo "FAIL: detokenize $args: exit $rc (want 2 with a message)"
        fail=1
    fi
done
"$GROK" tokenize --ids "x" > /dev/null 2>&1
[ $? -ne 0 ] || { echo "FAIL: tokenize without a tokenizer succeeded"; fail=1; }
"$GROK" tokenize --tokenizer "$MODEL" --bogus "x" > /dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: unknown flag does not exit 2"; fail=1; }
"$GROK" tokenize --tokenizer "$GROK_TMP/bad.bin" "x" > /dev/null 2> "$GROK_TMP/err.txt"
[ $? -ne 0 ] && [ -s "$GROK_TMP/err.txt" ] || { echo "FAIL: a non-model file is not refused"; fail=1; }
"$GROK" tokenize --help | grep -q "ID<TAB>PIECE" || { echo "FAIL: tokenize --help"; fail=1; }
"$GROK" detokenize --help | grep -q "usage" || { echo "FAIL: detokenize --help"; fail=1; }

if [ $fail -ne 0 ]; then exit 1; fi
echo "OK: $n inputs identical to spm_encode"
