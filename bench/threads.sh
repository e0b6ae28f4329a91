#!/usr/bin/env bash
# bench/threads.sh [--runs N]: what a process's size costs the freeze. Starts an agent on a
# temporary state directory and, for processes of 8 and 2,000 threads and of 100 and 10,000
# descriptors (out/tests/wl_limits), takes N full checkpoints each and prints the median
# frozenMs. Run after ./build.sh, as root.
set -euo pipefail
RUNS=5
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl WL=$ROOT/out/tests/wl_limits
[[ -x $HACTL && -x $WL ]] || { echo "bench: $HACTL or $WL is missing; run ./build.sh first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/us-bench.XXXXXX)
AGENT="--agent unix:$WORK/agent.sock"
cleanup() {
    for g in "${groups[@]}"; do "$HACTL" stop "$g" $AGENT >/dev/null 2>&1 || true; done
    [[ -n ${AGENT_PID:-} ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    rm -rf "$WORK"
}
groups=()
trap cleanup EXIT
"$HACTL" agent run --listen "unix:$WORK/agent.sock" --state-dir "$WORK/state" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do [[ -S $WORK/agent.sock ]] && break; sleep 0.1; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_line() {   # wait_line GROUP PATTERN
    local log=$WORK/state/groups/$1/output.log
    for _ in $(seq 1200); do grep -q "$2" "$log" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench: $1 never printed '$2'" >&2; exit 1
}

for what in "threads 8" "threads 2000" "fds 100" "fds 10000"; do
    set -- $what
    g=$1$2
    groups+=("$g")
    "$HACTL" launch "$g" $AGENT -- "$WL" "$1" "$2" "$WORK" >/dev/null
    wait_line "$g" '^limits 3$'
    frozen=()
    for _ in $(seq "$RUNS"); do
        r=$("$HACTL" checkpoint "$g" --full $AGENT --json)
        frozen+=("$(json 'd["frozenMs"]' <<<"$r")")
    done
    printf '%-8s %6s: frozen, full checkpoint, median of %d: %s ms\n' "$1" "$2" "$RUNS" "$(median "${frozen[@]}")"
    "$HACTL" stop "$g" $AGENT >/dev/null
done
