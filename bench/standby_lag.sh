#!/usr/bin/env bash
# How far a standby trails its primary under periodic checkpoints, and how fast it restores.
# Two agents on this host (node-a, node-b; loopback, mutual TLS). A SIZE MiB wl_bench group
# (random data, 5 % of its pages rewritten per second) runs on node-a under a policy with
# `checkpoints.interval: INTERVAL` (incremental checkpoints after the first full one: fullEvery 100000) and `standby:
# node-b`. Once the program has filled its memory and node-b is in sync (the time this takes is
# printed: the first copy of the whole memory), for SECONDS the primary's `hactl status --json` is
# read as often as it answers: how many committed checkpoints node-b lacks, and their bytes. Target: never more than one interval
# behind, that is at most 1 checkpoint. Then the group is stopped on node-a, node-b restores its
# newest copy, and node-a restores its own, for the restore times side by side (target: the
# standby as fast as the primary).
# Needs ./build.sh first, gcc and python3; runs as root.
#   bench/standby_lag.sh [--mib N] [--interval DURATION] [--seconds N]   (defaults: 1024, 100ms, 20)
set -euo pipefail
MIB=1024 INTERVAL=100ms SECONDS_=20
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl
while [[ $# -gt 0 ]]; do
    case $1 in
        --mib) MIB=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        --seconds) SECONDS_=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
[[ -x $HACTL ]] || { echo "bench: $HACTL is missing; run ./build.sh first" >&2; exit 1; }
mkdir -p out/bench
gcc -O2 -o out/bench/wl_bench bench/wl_bench.c

WORK=$(mktemp -d /tmp/us-bench-lag.XXXXXX)
on_exit() {
    "$HACTL" group stop bench "${A[@]}" >/dev/null 2>&1 || true
    "$HACTL" stop bench "${A[@]}" >/dev/null 2>&1 || true
    "$HACTL" stop bench "${B[@]}" >/dev/null 2>&1 || true
}
# shellcheck source=bench/two_agents.sh
source bench/two_agents.sh
cat >"$WORK/bench.yaml" <<EOF
group: bench
standby: node-b
checkpoints:
  interval: $INTERVAL
  fullEvery: 100000
apps:
  - name: bench
    command: $ROOT/out/bench/wl_bench
    args: ["$MIB"]
EOF
"$HACTL" group apply --file "$WORK/bench.yaml" "${A[@]}" >/dev/null
"$HACTL" group start bench "${A[@]}" >/dev/null
echo "bench: waiting for the program to fill its memory, then for node-b to be in sync" >&2
for _ in $(seq 1200); do grep -q '^ready' "$WORK/a/groups/bench/output.log" 2>/dev/null && break; sleep 0.1; done
started=$SECONDS
for _ in $(seq 1200); do
    # In sync once it holds a checkpoint: before the first one, it is in sync with nothing.
    [[ $("$HACTL" status bench --json "${A[@]}" | python3 -c 'import json,sys; r=json.load(sys.stdin)["groups"][0].get("replication") or {}; print(r.get("state") if r.get("lastReplicated") else "")') == in-sync ]] && break
    sleep 0.1
done
echo "bench: node-b in sync $((SECONDS - started)) s after the program was ready" >&2

newest_id() { "$HACTL" images list bench --json "$@" | python3 -c 'import json,sys; c=json.load(sys.stdin)["checkpoints"]; print(int(c[-1]["id"]) if c else 0)'; }
echo "bench: sampling for $SECONDS_ s" >&2
first_id=$(newest_id "${A[@]}")
: >"$WORK/samples"
end=$((SECONDS + SECONDS_))
while ((SECONDS < end)); do
    "$HACTL" status bench --json "${A[@]}" | python3 -c '
import json, sys
r = json.load(sys.stdin)["groups"][0].get("replication") or {}
print(r.get("state", "none"), r.get("behindCheckpoints", 0), r.get("behindBytes", 0))' >>"$WORK/samples"
done
newest=$("$HACTL" images list bench --json "${A[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checkpoints"][-1]["id"])')
taken=$((10#$newest - first_id))

# Restores: the standby's copy, then the primary's own, of the same group stopped on node-a. The
# newest checkpoint once it stopped: retention deletes older ones until then.
"$HACTL" group stop bench "${A[@]}" >/dev/null
newest=$("$HACTL" images list bench --json "${A[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["checkpoints"][-1]["id"])')
for _ in $(seq 300); do
    [[ $("$HACTL" images list bench --json "${B[@]}" | python3 -c 'import json,sys; c=json.load(sys.stdin)["checkpoints"]; print(c[-1]["id"] if c else "")') == "$newest" ]] && break
    sleep 0.1
done
on_b=$("$HACTL" restore bench --json "${B[@]}")
"$HACTL" stop bench "${B[@]}" >/dev/null
if ! on_a=$("$HACTL" restore bench --checkpoint "$newest" --json "${A[@]}" 2>&1); then
    echo "bench: the restore on node-a failed: $on_a" >&2
    on_a='{}'
fi

python3 - "$MIB" "$INTERVAL" "$(nproc)" "$WORK/samples" "$on_b" "$on_a" "$taken" "$SECONDS_" <<'PY'
import json, statistics, sys
mib, interval, cores, path, on_b, on_a, taken, seconds = sys.argv[1:9]
rows = [l.split() for l in open(path) if l.strip()]
behind = [int(r[1]) for r in rows]
mb = [int(r[2]) / 1e6 for r in rows]
unreachable = sum(r[0] == "unreachable" for r in rows)
at_most_one = sum(b <= 1 for b in behind)
print(f"standby lag of a {mib} MiB group writing 5 %/s, checkpoints every {interval}, node to node over loopback (mutual TLS), {cores} cores;")
print(f"{len(rows)} samples of the primary's status; it committed {taken} checkpoints in {seconds} s ({int(taken) / float(seconds):.1f} a second):")
print(f"  checkpoints behind   median {statistics.median(behind):.0f}, max {max(behind)}   target <= 1   "
      f"{'met' if max(behind) <= 1 else 'MISSED'} ({100 * at_most_one / len(rows):.0f} % of samples at most 1)")
print(f"  bytes behind         median {statistics.median(mb):.1f} MB, max {max(mb):.1f} MB")
if unreachable:
    print(f"  unreachable in {unreachable} samples")
def ms(doc):
    try:
        return json.loads(doc).get("durationMs")
    except json.JSONDecodeError:
        return None
b, a = ms(on_b), ms(on_a)
print(f"  restore on the standby  {b:8.0f} ms" if b else f"  restore on the standby  failed: {on_b}")
print(f"  restore on the primary  {a:8.0f} ms   (target: the standby as fast or faster)" if a else f"  restore on the primary  failed: {on_a}")
PY
