#!/bin/bash
# cli_help_test.sh - every subcommand answers --help (and -h) with status 0,
# a usage line, and every flag it accepts. The flags are read from the
# command's source, not from the help, so a flag parsed but left out of the
# help (or a help that drifted from the parser) fails: the rows of its
# options table (CLI_OPT_*) and the shared groups it adds (cli_add_group).
set -u
: "${GROK:?GROK not set}" "${GROK_SRC:?GROK_SRC not set}"
cd "$GROK_SRC/src/cli"
fails=0
# the file(s) holding each command's flags
files_of() {
    case "$1" in
    detokenize | tokenize) echo cmd_tokenize.c ;;
    train) echo cmd_train.c train_data.c train_lora.c ;;
    *) echo "cmd_$1.c" ;;
    esac
}
# the flags named in a C text: quoted "--x" / "-x" that stand where a flag's
# name or alias goes (a row; clang-format may have broken it over lines)
flags_in() {
    cat "$@" | tr '\n' ' ' |
        grep -oE 'CLI_OPT_[A-Z0-9]+\( *[A-Za-z_]+, *[][A-Za-z_.0-9()]+, *"-[^"]*"(, *"-[^"]*")?' |
        grep -oE '"-[^"]*"' | tr -d '"'
}
# the shared groups a command adds: their rows are in options.c
groups_in() {
    grep -ohE 'CLI_(MODEL|SAMPLER|SHAPE)_OPTS' "$@" | sort -u
}
# the rows of table $2 in file $1 (a shared group: options.c)
table_flags() {
    awk -v g="const cli_opt $2[]" 'index($0, g) {on = 1; next} on && /^};/ {on = 0} on' "$1" |
        grep -oE '"-[^"]*"' | tr -d '"'
}
commands=$("$GROK" help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {exit}' | grep -v '^help$')
[ -n "$commands" ] || { echo "FAIL: grok help lists no commands"; exit 1; }
n=0
for c in $commands; do
    n=$((n + 1))
    if ! help=$("$GROK" "$c" --help 2>&1); then
        echo "FAIL: grok $c --help exits $?"; fails=$((fails + 1)); continue
    fi
    h2=$("$GROK" "$c" -h 2>&1) || { echo "FAIL: grok $c -h exits $?"; fails=$((fails + 1)); }
    [ "$help" = "$h2" ] || { echo "FAIL: grok $c: -h and --help differ"; fails=$((fails + 1)); }
    echo "$help" | head -1 | grep -q "^usage: grok $c" || { echo "FAIL: grok $c --help: no usage line"; fails=$((fails + 1)); }
    # shellcheck disable=SC2046
    src=$(files_of "$c")
    case "$c" in # two commands in one file: their own tables
    tokenize) own=$(table_flags cmd_tokenize.c TOKENIZER_OPTS; table_flags cmd_tokenize.c TOKENIZE_OPTS) ;;
    detokenize) own=$(table_flags cmd_tokenize.c TOKENIZER_OPTS; table_flags cmd_tokenize.c DETOKENIZE_OPTS) ;;
    *) own=$(flags_in $src) ;;
    esac
    want=$( (echo "$own"; for g in $(groups_in $src); do table_flags options.c "$g"; done) | grep . | sort -u)
    # the omitted rows of a shared group: "const char *const ..._OMIT[] = {"--x", ...}"
    # (and their aliases, from options.c), which the command must refuse
    omit=$(cat $src | tr '\n' ' ' | grep -oE 'OMIT\[\] = \{[^}]*\}' | grep -oE '"-[^"]*"' | tr -d '"')
    for f in $omit; do
        omit="$omit $(grep -oE "\"$f\", *\"-[^\"]*\"" options.c | grep -oE '"-[^"]*"' | tail -1 | tr -d '"')"
    done
    for f in $omit; do
        grep -qxF -- "$f" <<<"$own" && continue # the command's own row of that name (bench's --batch)
        out=$("$GROK" "$c" "$f" 1 2>&1); rc=$?
        [ $rc -eq 2 ] && grep -q -- "unknown argument '$f'" <<<"$out" ||
            { echo "FAIL: grok $c takes $f, which it omits: status $rc"; fails=$((fails + 1)); }
    done
    [ -n "$want" ] || { echo "FAIL: no flags found in the source of grok $c ($src)"; fails=$((fails + 1)); }
    # an unknown flag: status 2 and a message naming it
    out=$("$GROK" "$c" --no-such-flag 2>&1); rc=$?
    if [ $rc -ne 2 ] || ! grep -q -- "unknown argument '--no-such-flag'" <<<"$out"; then
        echo "FAIL: grok $c --no-such-flag: status $rc, '$out'"; fails=$((fails + 1))
    fi
    for f in $want; do
        case " $(echo $omit) " in *" $f "*) continue ;; esac
        [ "$f" = "-h" ] || [ "$f" = "--help" ] && continue
        # the flag as a word of the help (in a row, or in brackets on the usage line)
        if ! grep -qE -- "(^|[][ ,(/|])$f([] ,=)/|]|\$)" <<<"$help"; then
            echo "FAIL: grok $c --help does not list $f"; fails=$((fails + 1))
        fi
    done
done
# the shared rows reach the commands that add them: the sampler's in run
for f in --temp --top-k --top-p --min-p --repeat-penalty --seed -s; do
    "$GROK" run --help | grep -qE -- "(^|[ ,])$f[ ,]" || { echo "FAIL: grok run --help lacks the sampler's $f"; fails=$((fails + 1)); }
done
# the same flag reads the same everywhere: --threads -1 and --seed x are refused alike
for c in run logits perplexity bench serve train info pack trace imatrix convert quantize; do
    out=$("$GROK" "$c" --threads -1 2>&1); rc=$?
    [ $rc -eq 2 ] && grep -q -- "flag --threads: '-1' is not an integer in \[0, 1024\]" <<<"$out" ||
        { echo "FAIL: grok $c --threads -1: status $rc, '$out'"; fails=$((fails + 1)); }
done
for c in run new train; do
    out=$("$GROK" "$c" -s x 2>&1); rc=$?
    [ $rc -eq 2 ] && grep -q -- "flag -s: 'x' is not an integer" <<<"$out" ||
        { echo "FAIL: grok $c -s x: status $rc, '$out'"; fails=$((fails + 1)); }
done
echo "cli_help: $n commands, $fails failures"
[ "$fails" -eq 0 ]
