#!/usr/bin/env bash
# Streaming throughput to a standby: a full checkpoint of an N MiB group (out/tests/wl_memory,
# random data) on agent node-a is streamed to agent node-b over the peer link (mutual TLS on
# loopback: two agents on this host, each with its own state directory). The time is the
# standby's, from "Receiving checkpoint" to "Replica ... committed" in its log (receiving,
# checking every chunk's CRC-32C, writing, fsync and commit), beside the 1.5 GB/s target. The
# images go while the members write them, so that time includes waiting for the writers; how long
# after the primary's commit the standby committed its copy is printed too. The
# CPU time each agent used per GB, from the checkpoint's start to the standby's commit, is printed
# too: on a shared machine it says more about the transport than the wall time.
# Needs ./build.sh first and python3; runs as root.
#   bench/standby.sh [--mib N] [--runs N]      (defaults: 1024 MiB, 3 runs)
set -euo pipefail
MIB=1024 RUNS=3
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl WORKLOAD=$ROOT/out/tests/wl_memory
while [[ $# -gt 0 ]]; do
    case $1 in
        --mib) MIB=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
[[ -x $HACTL && -x $WORKLOAD ]] || { echo "bench: $HACTL or $WORKLOAD is missing; run ./build.sh first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/us-bench-standby.XXXXXX)
on_exit() { "$HACTL" stop bench "${A[@]}" >/dev/null 2>&1 || true; }
# shellcheck source=bench/two_agents.sh
source bench/two_agents.sh
"$HACTL" launch bench --standby node-b "${A[@]}" -- "$WORKLOAD" "$MIB" >/dev/null
for _ in $(seq 600); do grep -q '^count' "$WORK/a/groups/bench/output.log" 2>/dev/null && break; sleep 0.1; done

cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
results=()
for i in $(seq "$RUNS"); do
    cpu_a=$(cpu_seconds "$A_PID") cpu_b=$(cpu_seconds "$B_PID")
    id=$("$HACTL" checkpoint bench --full --json "${A[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for _ in $(seq 1200); do
        "$HACTL" status bench --json "${A[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)["groups"][0].get("replication") or {}
sys.exit(0 if r.get("state") == "in-sync" and r.get("lastReplicated") == sys.argv[1] else 1)' "$id" && break
        sleep 0.1
    done
    line=$(python3 - "$WORK/b.log" "$id" "$WORK/a.log" <<'PY'
import re, sys
log, cid = open(sys.argv[1]).read().splitlines(), sys.argv[2]
def at(pattern, log=log):
    for l in log:
        if re.search(pattern, l):
            h, m, s = l.split()[0].split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
    sys.exit(f"bench: no line matching {pattern!r} in the standby's log")
start = at(rf"Receiving checkpoint {cid} ")
end = at(rf"Replica of checkpoint {cid} .* committed")
size = int(re.search(rf"Replica of checkpoint {cid} .*?(\d+) bytes", "\n".join(log)).group(1))
taken = at(rf"Checkpoint {cid} of group bench taken", open(sys.argv[3]).read().splitlines())
print(size, end - start, end - taken)
PY
)
    read -r bytes seconds after <<<"$line"
    used_a=$(python3 -c "print(f'{$(cpu_seconds "$A_PID") - $cpu_a:.2f}')") used_b=$(python3 -c "print(f'{$(cpu_seconds "$B_PID") - $cpu_b:.2f}')")
    echo "run $i/$RUNS: checkpoint $id, $bytes bytes in $seconds s, committed there $after s after the primary; CPU s: sender $used_a, standby $used_b (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    results+=("$bytes:$seconds:$used_a:$used_b:$after")
done

python3 - "$MIB" "$(nproc)" "${results[@]}" <<'PY'
import statistics, sys
mib, cores, runs = sys.argv[1], sys.argv[2], [tuple(map(float, r.split(":"))) for r in sys.argv[3:]]
rates = [b / s / 1e9 for b, s, *_ in runs]
rate = statistics.median(rates)
sender = statistics.median(a / (b / 1e9) for b, _, a, _, _ in runs)
standby = statistics.median(c / (b / 1e9) for b, _, _, c, _ in runs)
after = statistics.median(r[4] for r in runs)
print(f"streaming a full image of a {mib} MiB group to the standby (loopback, mutual TLS, {cores} cores):")
print(f"  throughput  {rate:5.2f} GB/s (median of {len(rates)}: {', '.join(f'{r:.2f}' for r in rates)})   target >= 1.5 GB/s   {'met' if rate >= 1.5 else 'MISSED'}")
print(f"  the standby's copy committed {after:.2f} s after the primary's (median)")
print(f"  CPU time per GB (median): sender {sender:.2f} s, standby {standby:.2f} s")
PY
