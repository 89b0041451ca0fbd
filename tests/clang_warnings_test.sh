#!/bin/bash
# clang_warnings_test.sh - the code is clean under clang as well as gcc: every
# C file of src/ and tests/ is compiled by clang (-fsyntax-only, the
# project's warning flags, -Werror). The gcc build of the suite already
# fails on a gcc warning; this catches what only clang sees (builtins it
# does not know, missing field initializers, functions unused on its
# targets).
set -u
: "${GROK_SRC:?GROK_SRC not set}"
command -v clang >/dev/null || { echo "SKIP: clang not installed (scripts/setup.sh installs it)"; exit 77; }
cd "$GROK_SRC"
MPI_INC=$(mpicc --showme:compile 2>/dev/null || true)
fails=0 n=0
for f in $(find src tests -name '*.c' | sort); do
    extra=""
    case "$f" in
    src/dist/mpi.c) [ -n "$MPI_INC" ] || continue; extra="$MPI_INC -DGROK_HAVE_MPI" ;;
    tests/pickle/ml_dtypes.c) # a Python extension: Debian's Python and NumPy headers
        py=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
        np=$(/usr/bin/python3 -c 'import numpy; print(numpy.get_include())' 2>/dev/null)
        [ -f "$py/Python.h" ] && [ -n "$np" ] || { echo "skipped $f: no Python.h (python3-dev)"; continue; }
        extra="-I$py -I$np" ;;
    tests/fuzz/*) extra="-fsanitize=fuzzer-no-link -DGROK_SOURCE_DIR=\"$GROK_SRC\"" ;;
    esac
    # shellcheck disable=SC2086
    if ! out=$(clang -std=c11 -fsyntax-only -Werror -Wall -Wextra -Wshadow -Wno-unused-parameter -D_GNU_SOURCE \
               -Iinclude -Isrc -Itests -I/usr/include/cjson $extra "$f" 2>&1); then
        echo "FAIL: $f"; echo "$out" | head -20; fails=$((fails + 1))
    fi
    n=$((n + 1))
done
echo "$n files, $fails with clang warnings"
[ "$fails" -eq 0 ] && echo PASS
