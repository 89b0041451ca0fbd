#!/bin/bash
# install_test.sh - `cmake --install` puts the command, libgrok.so, grok.h and
# grok.pc under a prefix; a program outside the tree builds against them with
# pkg-config and runs, and the shared library exports exactly grok.h's
# functions (every one of them, and no unprefixed symbol).
set -u
: "${GROK:?GROK not set}" "${GROK_SRC:?GROK_SRC not set}" "${GROK_TMP:?GROK_TMP not set}"
T="$GROK_TMP"
rm -rf "$T" && mkdir -p "$T"
BUILD=$(dirname "$GROK")
for tool in pkg-config cc nm; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

cmake --install "$BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install"; exit 1; }
P="$T/prefix"
LIBDIR=$(realpath "$(dirname "$(find "$P" -name libgrok.so | head -n 1)")")
for f in "$P/bin/grok" "$P/include/grok.h" "$LIBDIR/libgrok.so" "$LIBDIR/pkgconfig/grok.pc"; do
    [ -e "$f" ] || fail "not installed: $f"
done
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
[ "$(pkg-config --modversion grok)" = "$(sed -n 's/^#define GROK_VERSION "\(.*\)"/\1/p' "$GROK_SRC/include/grok.h")" ] ||
    fail "grok.pc's version is not grok.h's"

# an outside program: load, tokenize into a caller's buffer, decode, version
cat >"$T/outside.c" <<'C'
#include <grok.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char err[GROK_ERR_SIZE];
    if (strcmp(grok_version(), GROK_VERSION) != 0) { printf("version %s vs %s\n", grok_version(), GROK_VERSION); return 1; }
    grok_model_params mp = grok_model_default_params();
    mp.kernels = GROK_KERNELS_EXACT;
    grok_model *m = grok_model_load_params(argv[1], &mp, err, sizeof err);
    if (!m) { printf("load: %s\n", err); return 1; }
    int32_t ids[64];
    int64_t n = grok_tokenize_into(grok_model_tokenizer(m), "Hello world", 11, false, ids, 64);
    if (n <= 0 || n > 64) { printf("tokenize: %lld\n", (long long)n); return 1; }
    grok_context *c = grok_context_create(m, NULL, err, sizeof err);
    int rc = c ? grok_decode(c, ids, n, NULL, err, sizeof err) : -1;
    if (rc != GROK_OK) { printf("decode %d: %s\n", rc, err); return 1; }
    int32_t bad = 1 << 30;
    rc = grok_decode(c, &bad, 1, NULL, err, sizeof err);
    if (rc != GROK_ERR_INPUT) { printf("bad id gave %d\n", rc); return 1; }
    printf("outside: %lld tokens, logit[0] %g\n", (long long)n, grok_context_logits(c)[0]);
    grok_context_free(c);
    grok_model_free(m);
    return 0;
}
C
SAN=""
[ "${GROK_ASAN:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror $SAN -o "$T/outside" "$T/outside.c" $(pkg-config --cflags --libs grok) 2>"$T/cc.log" ||
    { cat "$T/cc.log"; fail "the outside program does not build against the installed library"; }
"$P/bin/grok" new -o "$T/m.gguf" --vocab 300 --d-model 64 >/dev/null 2>&1 || fail "installed grok new"
if [ -x "$T/outside" ]; then
    out=$(LD_LIBRARY_PATH="$LIBDIR" "$T/outside" "$T/m.gguf" 2>&1) || fail "outside program: $out"
    echo "$out"
    LD_LIBRARY_PATH="$LIBDIR" ldd "$T/outside" | grep -q "$(realpath "$LIBDIR")/libgrok.so" || fail "the program is not linked to the installed libgrok.so"
fi

# exports: the functions grok.h declares, all of them, and nothing else
# (every top-level function declaration, with GROK_API or without: one
# that lacks it is caught as "declared but not exported")
grep -E '^(GROK_API )?[a-z][a-z0-9_ ]*[ *]grok_[a-z0-9_]*\(' "$GROK_SRC/include/grok.h" | grep -vE '^(typedef|static) ' |
    sed 's/(.*//; s/.*[ *]//' | sort -u >"$T/declared"
nm -D --defined-only "$LIBDIR/libgrok.so" | awk '$2 == "T" {print $3}' | sort -u >"$T/exported"
missing=$(comm -23 "$T/declared" "$T/exported")
extra=$(comm -13 "$T/declared" "$T/exported")
[ -z "$missing" ] || fail "declared in grok.h but not exported: $missing"
[ -z "$extra" ] || fail "exported but not in grok.h: $extra"
nm -D --defined-only "$LIBDIR/libgrok.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^grok_' >"$T/unprefixed"
[ -s "$T/unprefixed" ] && fail "unprefixed symbols exported: $(head -5 "$T/unprefixed" | tr '\n' ' ')"
# the installed grok serves its chat page (compiled in) from outside the tree
if command -v curl >/dev/null; then
    (cd / && exec "$P/bin/grok" serve -m "$T/m.gguf" --port 0 --port-file "$T/serve.port" --threads 1 >"$T/serve.log" 2>&1) &
    spid=$!
    for _ in $(seq 1 100); do [ -s "$T/serve.port" ] && break; sleep 0.1; done
    code=$(curl -s -o "$T/page.html" -w '%{http_code}' "http://127.0.0.1:$(cat "$T/serve.port" 2>/dev/null)/")
    { [ "$code" = 200 ] && cmp -s "$T/page.html" "$GROK_SRC/src/server/webui/index.html"; } ||
        fail "the installed grok serve does not serve its chat page (HTTP $code)"
    kill -TERM $spid 2>/dev/null
    wait $spid 2>/dev/null
fi
echo "install: $(wc -l <"$T/declared") functions declared, $(wc -l <"$T/exported") exported"
[ $fails -eq 0 ] && echo "install_test: ok" && exit 0
exit 1
