# lib.sh - the check counting the shell tests share, sourced after their
# `set`: ok and bad print one check's result and count it; summary, the
# test's last command, prints the counts and fails if any check did.
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   $*"; }
bad() { fails=$((fails + 1)); echo "FAIL $*"; }
# summary [NAME]: "NAME: P passed, F failed" ("P passed, F failed" without NAME)
summary() {
    echo "${1:+$1: }$passes passed, $fails failed"
    [ "$fails" -eq 0 ]
}
