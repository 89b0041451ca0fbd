#!/bin/bash
# cli_help_test.sh - every subcommand answers --help (and -h) with status 0,
# a usage line, and every flag it accepts. The flags are read from the
# command's source, not from the help, so a flag parsed but left out of the
# help (or a help that drifted from the parser) fails: the rows of its
# options table (CLI_OPT_*), the shared groups it adds (cli_add_group), and
# the older cli_str/cli_i64/... calls of commands not yet converted.
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
# name or alias goes (a row or a parse call)
flags_in() {
    grep -ohE '(CLI_OPT_[A-Z0-9]+\([A-Za-z_]+, *[A-Za-z_.\[\]0-9]+, *|cli_(str|i64|f32|u64|flag)\(argv, *argc, *&?i, *)"-[^"]*"(, *"-[^"]*")?' "$@" |
        grep -oE '"-[^"]*"' | tr -d '"'
}
# the shared groups a command adds: their rows are in options.c
groups_in() {
    grep -ohE 'CLI_(MODEL|SAMPLER|SHAPE)_OPTS' "$@" | sort -u
}
group_flags() {
    awk -v g="const cli_opt $1\\[\\]" 'index($0, g) {on = 1; next} on && /^};/ {on = 0} on' options.c |
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
    want=$( (flags_in $src; for g in $(groups_in $src); do group_flags "$g"; done) | sort -u)
    # the omitted rows of a shared group: "const char *const ..._OMIT[] = {"--x", ...}"
    omit=$(grep -ohE 'OMIT\[\] = \{[^}]*\}' $src | grep -oE '"-[^"]*"' | tr -d '"')
    for f in $want; do
        case " $(echo $omit) " in *" $f "*) continue ;; esac
        [ "$f" = "-h" ] || [ "$f" = "--help" ] && continue
        # the flag as a word of the help (followed by a space, comma, = or the line's end)
        if ! grep -qE -- "(^|[ ,(/|])$f([ ,=)/|]|\$)" <<<"$help"; then
            echo "FAIL: grok $c --help does not list $f"; fails=$((fails + 1))
        fi
    done
done
echo "cli_help: $n commands, $fails failures"
[ "$fails" -eq 0 ]
