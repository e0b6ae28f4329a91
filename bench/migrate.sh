#!/usr/bin/env bash
# Live migration: a SIZE MiB wl_bench group (random data, 5 % of its pages rewritten per second)
# runs on agent node-a and is moved to node-b with `hactl migrate`, then back, RUNS times. Two
# agents on this host (loopback, mutual TLS). For each move: rounds, bytes sent, durationMs and
# frozenMs as migrate --json reports them, and the downtime the application itself saw: the
# longest gap between two of its ticks (CLOCK_MONOTONIC, one tick every 50 ms), beside the
# target (downtime <= 100 ms for 1 GiB writing 5 %/s).
# Needs ./build.sh first, gcc and python3; runs as root.
#   bench/migrate.sh [--mib N] [--runs N]      (defaults: 1024 MiB, 2 runs: 4 moves)
set -euo pipefail
MIB=1024 RUNS=2
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl
while [[ $# -gt 0 ]]; do
    case $1 in
        --mib) MIB=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
[[ -x $HACTL ]] || { echo "bench: $HACTL is missing; run ./build.sh first" >&2; exit 1; }
mkdir -p out/bench
gcc -O2 -o out/bench/wl_bench bench/wl_bench.c

WORK=$(mktemp -d /tmp/us-bench-migrate.XXXXXX)
on_exit() { "$HACTL" stop bench "${A[@]}" >/dev/null 2>&1 || true; "$HACTL" stop bench "${B[@]}" >/dev/null 2>&1 || true; }
# shellcheck source=bench/two_agents.sh
source bench/two_agents.sh
"$HACTL" launch bench "${A[@]}" -- "$ROOT/out/bench/wl_bench" "$MIB" >/dev/null
# The group writes into the output log of the node it runs on: the ticks of a move are in both.
LOG_A=$WORK/a/groups/bench/output.log LOG_B=$WORK/b/groups/bench/output.log
lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }
for _ in $(seq 600); do [[ $(grep -c '^count' "$LOG_A" 2>/dev/null) -ge 40 ]] && break; sleep 0.1; done

moves=()
for i in $(seq "$RUNS"); do
    for hop in "a:node-b" "b:node-a"; do
        from=${hop%%:*} to=${hop#*:}
        [[ $from == a ]] && agent=("${A[@]}") || agent=("${B[@]}")
        mark_a=$(lines "$LOG_A") mark_b=$(lines "$LOG_B")
        json=$("$HACTL" migrate bench --to "$to" --json "${agent[@]}")
        sleep 1   # ticks after the move, so that the gap is closed
        gap=$({ tail -n +"$((mark_a + 1))" "$LOG_A"; [[ -f $LOG_B ]] && tail -n +"$((mark_b + 1))" "$LOG_B"; } | python3 -c '
import re, sys
ticks = sorted((int(m.group(1)), float(m.group(2))) for m in (re.match(r"count (\d+) at (\d+)", l) for l in sys.stdin) if m)
at = [t for _, t in ticks]
print(max((b - a for a, b in zip(at, at[1:])), default=0))')
        line=$(python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(j["rounds"], j["bytes"], j["durationMs"], j["frozenMs"], sys.argv[2])' "$json" "$gap")
        echo "move $((${#moves[@]} + 1)): node-$from -> $to: rounds bytes durationMs frozenMs appGapMs = $line" >&2
        moves+=("$line")
    done
done

python3 - "$MIB" "$(nproc)" "${moves[@]}" <<'PY'
import statistics, sys
mib, cores, moves = sys.argv[1], sys.argv[2], [list(map(float, m.split())) for m in sys.argv[3:]]
med = lambda i: statistics.median(m[i] for m in moves)
print(f"live migration of a {mib} MiB group writing 5 %/s, node to node over loopback (mutual TLS), {cores} cores; median of {len(moves)} moves:")
print(f"  rounds             {med(0):8.0f}")
print(f"  bytes sent         {med(1) / 1e6:8.1f} MB")
print(f"  whole migration    {med(2):8.0f} ms")
print(f"  frozen (agent)     {med(3):8.0f} ms   target <= 100 ms   {'met' if med(3) <= 100 else 'MISSED'}")
print(f"  app's longest gap  {med(4):8.0f} ms   (between two 50 ms ticks of the application)")
PY
