#!/usr/bin/env bash
# The CLI's overhead against a running agent: wall time of `hactl status` and of `hactl
# checkpoint` of a one-page process (out/tests/wl_counter), minus the agent's own time, median of
# --runs runs, beside the 50 ms target. Needs ./build.sh first and python3; runs as root.
#   bench/cli.sh [--runs N] [--hactl PATH]     (--hactl: another build of hactl, to compare)
set -euo pipefail
RUNS=20
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --hactl) HACTL=$(realpath "$2"); shift 2 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
WORKLOAD=$(dirname "$HACTL")/../tests/wl_counter
[[ -x $HACTL ]] || { echo "bench: $HACTL is missing; run ./build.sh first" >&2; exit 1; }
[[ -x $WORKLOAD ]] || { echo "bench: $WORKLOAD is missing; run ./build.sh first" >&2; exit 1; }

WORK=$(mktemp -d /tmp/us-bench-cli.XXXXXX)
AGENT=(--agent "unix:$WORK/agent.sock")
cleanup() {
    "$HACTL" stop cli "${AGENT[@]}" >/dev/null 2>&1 || true
    [[ -n ${AGENT_PID:-} ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
"$HACTL" agent run --listen "unix:$WORK/agent.sock" --state-dir "$WORK/state" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 200); do "$HACTL" status "${AGENT[@]}" >/dev/null 2>&1 && break; sleep 0.1; done
"$HACTL" launch cli "${AGENT[@]}" -- "$WORKLOAD" >/dev/null
"$HACTL" checkpoint cli "${AGENT[@]}" >/dev/null   # the first one is full; those measured are incremental

# timed VAR CMD...: runs CMD (stdout kept in $out) and appends "wall user+sys" (ms) to the array VAR.
TIMEFORMAT='%3R %3U %3S'
timed() {
    local -n into=$1; shift
    local t
    { t=$( { time "$@" >"$WORK/out" 2>"$WORK/err"; } 2>&1 ); } || { cat "$WORK/err" >&2; exit 1; }
    out=$(<"$WORK/out")
    read -r wall user sys <<<"$t"
    into+=("$(python3 -c "print($wall * 1000, ($user + $sys) * 1000)")")
}
load_before=$(cut -d' ' -f1 /proc/loadavg)
status=() checkpoint=() agent_ms=() bytes=()
for i in $(seq "$RUNS"); do
    timed status "$HACTL" status "${AGENT[@]}"
    timed checkpoint "$HACTL" checkpoint cli "${AGENT[@]}" --json
    read -r duration size < <(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["durationMs"], d["bytes"])' <<<"$out")
    agent_ms+=("$duration") bytes+=("$size")
    echo "run $i/$RUNS: status ${status[-1]% *} ms, checkpoint ${checkpoint[-1]% *} ms (the agent's ${duration} ms)" >&2
done
load_after=$(cut -d' ' -f1 /proc/loadavg)

python3 - "$RUNS" "$(nproc)" "$load_before" "$load_after" "$(IFS=,; echo "${status[*]}")" "$(IFS=,; echo "${checkpoint[*]}")" \
    "${agent_ms[*]}" "${bytes[*]}" <<'PY'
import statistics, sys
runs, cores, load_before, load_after = sys.argv[1:5]
def pairs(text): return [tuple(map(float, p.split())) for p in text.split(",")]
status, checkpoint = pairs(sys.argv[5]), pairs(sys.argv[6])
agent = [float(v) for v in sys.argv[7].split()]
size = [int(v) for v in sys.argv[8].split()]
median = lambda values: statistics.median(values)
print(f"\nhactl against a running agent, median of {runs} runs; {cores} cores, load average {load_before} before, {load_after} after\n")
rows = [
    ("hactl status: wall time, all of it overhead", f"{median(w for w, _ in status):.1f} ms", "<= 50 ms"),
    ("hactl status: hactl's CPU time (user + sys)", f"{median(c for _, c in status):.1f} ms", "-"),
    ("hactl checkpoint: wall time", f"{median(w for w, _ in checkpoint):.1f} ms", "-"),
    ("hactl checkpoint: the agent's durationMs", f"{median(agent):.1f} ms", "-"),
    ("hactl checkpoint: overhead (wall time - durationMs)", f"{median(w - a for (w, _), a in zip(checkpoint, agent)):.1f} ms", "<= 50 ms"),
    ("hactl checkpoint: hactl's CPU time (user + sys)", f"{median(c for _, c in checkpoint):.1f} ms", "-"),
    ("checkpoint size (incremental, one-page process)", f"{median(size) / 1000:.0f} kB", "-"),
]
header = ("figure", "measured", "target")
w = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
for r in [header] + rows:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
PY
