#!/usr/bin/env bash
# Restore from an unmerged chain against a restore of the same checkpoint merged: a SIZE MiB
# wl_bench group (5 % of its pages rewritten per second) checkpointed full, then INCREMENTS
# times a second apart, under an agent that does not merge; kill -9, restore of the newest
# checkpoint (its chain: full + increments). Then the agent is started again with background
# merges, merges the chain into full images, and the same checkpoint is restored again. Each
# restore is timed from the command to the restored process's first write (bench/progress.py),
# and as the restore reply's durationMs. Prints the medians of RUNS runs and the load average.
# Needs ./build.sh first, gcc and python3; runs as root.
#   bench/chain_restore.sh [--mib N] [--increments N] [--runs N]   (defaults: 1024, 3, 3)
set -euo pipefail
MIB=1024 INCREMENTS=3 RUNS=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --mib) MIB=$2; shift 2 ;;
        --increments) INCREMENTS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl
[[ -x $HACTL ]] || { echo "bench: $HACTL is missing; run ./build.sh first" >&2; exit 1; }
mkdir -p out/bench
gcc -O2 -o out/bench/wl_bench bench/wl_bench.c

WORK=$(mktemp -d /tmp/us-bench-chain.XXXXXX)
AGENT="--agent unix:$WORK/agent.sock"
stop_agent() {
    [[ -n ${AGENT_PID:-} ]] || return 0
    kill "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
}
start_agent() {   # start_agent [OPTIONS...]
    rm -f "$WORK/agent.sock"
    "$HACTL" agent run --listen "unix:$WORK/agent.sock" --state-dir "$WORK/state" "$@" >>"$WORK/agent.log" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 100); do [[ -S $WORK/agent.sock ]] && break; sleep 0.1; done
}
cleanup() {
    "$HACTL" stop bench $AGENT >/dev/null 2>&1 || true
    stop_agent
    rm -rf "$WORK"
}
trap cleanup EXIT

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
LOG=$WORK/state/groups/bench/output.log
wait_line() { for _ in $(seq 600); do grep -q "$1" "$LOG" 2>/dev/null && return 0; sleep 0.1; done; echo "bench: no '$1' in $LOG" >&2; exit 1; }
host_pid() { "$HACTL" status bench $AGENT --json | json 'd["groups"][0]["members"][0]["hostPid"]'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# restore_once ID: kill -9 (if the group still runs: an agent stopped takes its groups along),
# restore, verify; prints "first-write-ms duration-ms"
restore_once() {
    local pid
    pid=$(host_pid 2>/dev/null || true)
    [[ -n $pid ]] && kill -9 "$pid" && sleep 0.5
    # the agent's image verification warmed up (JIT), as in an agent that has run a while
    "$HACTL" images verify bench "$1" $AGENT >/dev/null
    local out=$WORK/restore.json first
    first=$(python3 bench/progress.py restore "$LOG" -- sh -c "'$HACTL' restore bench --checkpoint $1 $AGENT --json >'$out'")
    for _ in $(seq 600); do [[ -s $out ]] && break; sleep 0.1; done
    local mark
    mark=$(grep -c 'VERIFY OK' "$LOG" || true)
    kill -USR1 "$(host_pid)"
    for _ in $(seq 600); do [[ $(grep -c 'VERIFY OK' "$LOG") -gt $mark ]] && break; sleep 0.1; done
    [[ $(grep -c 'VERIFY OK' "$LOG") -gt $mark ]] || { echo "bench: the restored process did not verify" >&2; exit 1; }
    echo "$first $(json 'd["durationMs"]' <"$out")"
}

chain_first=() chain_duration=() merged_first=() merged_duration=() loads=()
for i in $(seq "$RUNS"); do
    echo "run $i/$RUNS: ${MIB} MiB, full + $INCREMENTS increments" >&2
    rm -rf "$WORK/state"
    start_agent --no-background-merge --full-every 100 --chain-limit 10000
    "$HACTL" launch bench $AGENT -- "$ROOT/out/bench/wl_bench" "$MIB" >/dev/null
    wait_line '^ready'
    "$HACTL" checkpoint bench --full $AGENT --json >/dev/null
    for _ in $(seq "$INCREMENTS"); do
        sleep 1
        r=$("$HACTL" checkpoint bench $AGENT --json)
        [[ $(json 'd["kind"]' <<<"$r") == incremental ]] || { echo "bench: a checkpoint was not incremental" >&2; exit 1; }
    done
    id=$(json 'd["id"]' <<<"$r")
    loads+=("$(cut -d' ' -f1 /proc/loadavg)")
    read -r f d < <(restore_once "$id")
    chain_first+=("$f") chain_duration+=("$d")
    grep -q "Merge of checkpoint" "$WORK/agent.log" && { echo "bench: something merged during the chain restore" >&2; exit 1; }

    # The same checkpoint merged: the agent again, merging in the background at its start.
    stop_agent
    start_agent
    for _ in $(seq 1200); do grep -q "Merge of checkpoint $id of group bench finished" "$WORK/agent.log" && break; sleep 0.1; done
    grep -q "Merge of checkpoint $id of group bench finished" "$WORK/agent.log" || { echo "bench: checkpoint $id was not merged" >&2; exit 1; }
    read -r f d < <(restore_once "$id")
    merged_first+=("$f") merged_duration+=("$d")
    "$HACTL" stop bench $AGENT >/dev/null
    stop_agent
    : >"$WORK/agent.log"
done

printf 'restore of a %s MiB group, medians of %s runs (load average %s):\n' "$MIB" "$RUNS" "$(median "${loads[@]}")"
printf '  from its chain (full + %s increments, unmerged): first write after %s ms, durationMs %s\n' \
    "$INCREMENTS" "$(median "${chain_first[@]}")" "$(median "${chain_duration[@]}")"
printf '  from the same checkpoint merged into full images:  first write after %s ms, durationMs %s\n' \
    "$(median "${merged_first[@]}")" "$(median "${merged_duration[@]}")"
