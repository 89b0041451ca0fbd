#!/bin/bash
# memcg.sh - runs a command in a fresh memory cgroup (a child of this
# process's own, v2 when its memory controller is on, else v1) limited to
# LIMIT bytes, and reports what the kernel saw: the peak charge (anonymous
# memory and the page cache the group touched), OOM kills and the status.
# Used by tests/memlimit_test.sh and bench/bigger_than_ram.sh; needs root.
#
#   memcg.sh check                      exit 0 if a group can be made, else
#                                       print why and exit 77
#   memcg.sh run LIMIT STATS -- CMD...  run CMD in the group; STATS gets lines
#                                       "limit N", "peak N", "oom_kills N",
#                                       "rc N"; exits with CMD's status
set -u

# Prints "v2 DIR" or "v1 DIR" for this process's memory cgroup, or nothing.
own_group() {
    local rel mnt
    rel=$(awk -F: '$1 == "0" && $2 == "" {print $3}' /proc/self/cgroup)
    mnt=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") {if ($(i+1) == "cgroup2") print $5; break}}' /proc/self/mountinfo | head -1)
    if [ -n "$rel" ] && [ -n "$mnt" ] && grep -qw memory "$mnt$rel/cgroup.controllers" 2>/dev/null; then
        echo "v2 $mnt${rel%/}"
        return
    fi
    rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
    mnt=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") {if ($(i+1) == "cgroup" && $(i+3) ~ /(^|,)memory(,|$)/) print $5; break}}' /proc/self/mountinfo | head -1)
    if [ -n "$rel" ] && [ -n "$mnt" ] && [ -e "$mnt$rel/memory.limit_in_bytes" ]; then
        echo "v1 $mnt${rel%/}"
    fi
}

check() {
    if [ "$(id -u)" != 0 ]; then
        echo "not root: cannot make a memory cgroup"
        return 77
    fi
    local g
    g=$(own_group)
    if [ -z "$g" ]; then
        echo "no memory cgroup controller is mounted"
        return 77
    fi
    local dir=${g#* }/grok-memcg-check-$$
    if ! mkdir "$dir" 2>/dev/null; then
        echo "cannot create a cgroup under ${g#* }"
        return 77
    fi
    rmdir "$dir"
    return 0
}

run() {
    local limit=$1 stats=$2
    shift 2
    [ "${1:-}" = "--" ] && shift
    local g kind dir
    g=$(own_group)
    kind=${g%% *}
    dir=${g#* }/grok-memcg-$$-$RANDOM
    mkdir "$dir" || return 1
    if [ "$kind" = v2 ]; then
        echo "$limit" >"$dir/memory.max"
        echo 0 >"$dir/memory.swap.max" 2>/dev/null
    else
        echo "$limit" >"$dir/memory.limit_in_bytes"
    fi
    # the child joins the group, then becomes the command; a TERM or INT
    # sent to this script goes on to it (a server stopped by its test)
    bash -c 'echo $$ > "$1"; shift; exec "$@"' memcg "$dir/$([ "$kind" = v2 ] && echo cgroup.procs || echo tasks)" "$@" &
    local child=$!
    trap 'kill -TERM $child 2>/dev/null' TERM INT
    local rc
    while :; do
        wait $child
        rc=$?
        kill -0 $child 2>/dev/null || break
    done
    trap - TERM INT
    local peak oom
    if [ "$kind" = v2 ]; then
        peak=$(cat "$dir/memory.peak" 2>/dev/null || echo -1)
        oom=$(awk '$1 == "oom_kill" {print $2}' "$dir/memory.events")
        limit=$(cat "$dir/memory.max")
    else
        peak=$(cat "$dir/memory.max_usage_in_bytes")
        oom=$(awk '$1 == "oom_kill" {print $2}' "$dir/memory.oom_control")
        limit=$(cat "$dir/memory.limit_in_bytes")
    fi
    printf 'limit %s\npeak %s\noom_kills %s\nrc %s\n' "$limit" "$peak" "${oom:-0}" "$rc" >"$stats"
    # the page cache still charged to the group moves to the parent when it goes
    rmdir "$dir" 2>/dev/null || { sleep 0.2; rmdir "$dir" 2>/dev/null; }
    return $rc
}

case "${1:-}" in
check) check ;;
run)
    shift
    run "$@"
    ;;
*)
    echo "usage: memcg.sh check | run LIMIT STATS -- CMD..." >&2
    exit 2
    ;;
esac
