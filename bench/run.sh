#!/usr/bin/env bash
# Understudy benchmark: a 1 GiB process rewriting 5 % of its pages per second, as in
# docs/benchmarks.md. Prints medians of --runs runs beside the targets, and beside CRIU
# and DMTCP measured in the same runs on the same workload when --peers names a
# directory with their builds (criu/criu, dmtcp/bin/; see bench/peers.sh).
# Needs ./build.sh first, gcc and python3; runs as root.
#   bench/run.sh [--runs N] [--size MiB] [--peers DIR]
set -euo pipefail
RUNS=5 SIZE=1024 PEERS=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --peers) PEERS=$(cd "$2" && pwd) || { echo "bench: --peers $2: no such directory" >&2; exit 2; }; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1; see --help" >&2; exit 2 ;;
    esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD HACTL=$ROOT/out/bin/hactl
[[ -x $HACTL ]] || { echo "bench: $HACTL is missing; run ./build.sh first" >&2; exit 1; }
mkdir -p out/bench
gcc -O2 -o out/bench/wl_bench bench/wl_bench.c

WORK=$(mktemp -d /tmp/us-bench.XXXXXX)
AGENT="--agent unix:$WORK/agent.sock"
cleanup() {
    "$HACTL" status $AGENT --json 2>/dev/null | python3 -c 'import json,sys
for g in json.load(sys.stdin)["groups"]: print(g["name"])' 2>/dev/null |
        while read -r g; do "$HACTL" stop "$g" $AGENT >/dev/null 2>&1 || true; done
    [[ -n ${AGENT_PID:-} ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
"$HACTL" agent run --listen "unix:$WORK/agent.sock" --state-dir "$WORK/state" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 100); do [[ -S $WORK/agent.sock ]] && break; sleep 0.1; done

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
wait_line() {   # wait_line GROUP PATTERN
    local log=$WORK/state/groups/$1/output.log
    for _ in $(seq 600); do grep -q "$2" "$log" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench: $1 never printed '$2'" >&2; exit 1
}
host_pid() { "$HACTL" status "$1" $AGENT --json | json 'd["groups"][0]["members"][0]["hostPid"]'; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -a full_frozen full_durable full_bytes inc_frozen inc_durable inc_bytes restore_ms
# empty, not unset, when the peers are not run (set -u)
criu_frozen=() criu_durable=() criu_restore=() criu_bytes=() dmtcp_frozen=() dmtcp_durable=() dmtcp_restore=() dmtcp_bytes=()
for i in $(seq "$RUNS"); do
    g=bench$i
    echo "run $i/$RUNS: launching a ${SIZE} MiB workload" >&2
    "$HACTL" launch "$g" $AGENT -- "$ROOT/out/bench/wl_bench" "$SIZE" >/dev/null
    wait_line "$g" '^ready'
    sleep 1
    r=$("$HACTL" checkpoint "$g" --full $AGENT --json)
    full_frozen+=("$(json 'd["frozenMs"]' <<<"$r")") full_durable+=("$(json 'd["durationMs"]' <<<"$r")")
    full_bytes+=("$(json 'd["bytes"]' <<<"$r")")
    full_id=$(json 'd["id"]' <<<"$r")
    # The measured increment must hold one second of rewrites (5 %), counted from the
    # previous capture: a first incremental checkpoint, then what is left of the second.
    r=$("$HACTL" checkpoint "$g" $AGENT --json)
    sleep "$(json 'max(0.0, 1.0 - d["durationMs"] / 1000.0)' <<<"$r")"
    r=$("$HACTL" checkpoint "$g" $AGENT --json)
    [[ $(json 'd["kind"]' <<<"$r") == incremental ]] || { echo "bench: second checkpoint was not incremental" >&2; exit 1; }
    inc_frozen+=("$(json 'd["frozenMs"]' <<<"$r")") inc_durable+=("$(json 'd["durationMs"]' <<<"$r")")
    inc_bytes+=("$(json 'd["bytes"]' <<<"$r")")
    kill -9 "$(host_pid "$g")"
    sleep 0.5
    # timed as the peers' restores are: from the command to the restored process's first write
    restore_ms+=("$(python3 bench/progress.py restore "$WORK/state/groups/$g/output.log" -- \
        "$HACTL" restore "$g" --checkpoint "$full_id" $AGENT)")
    kill -USR1 "$(host_pid "$g")"
    wait_line "$g" 'VERIFY OK'
    "$HACTL" stop "$g" $AGENT >/dev/null
    # the peers, interleaved with Understudy: the machine's speed drifts, ratios much less
    if [[ -n $PEERS ]]; then
        for tool in criu dmtcp; do
            echo "run $i/$RUNS: $tool on the same ${SIZE} MiB workload" >&2
            # DMTCP's coordinator listens on every interface: a network namespace of its own
            wrap=(); [[ $tool == dmtcp ]] && wrap=(unshare --net)
            read -r f d r b < <("${wrap[@]}" bench/peers.sh "$tool" "$PEERS" "$SIZE" "$ROOT/out/bench/wl_bench" "$WORK/$tool$i") || true
            [[ -n ${b:-} ]] || { echo "bench: the $tool round failed (see above)" >&2; exit 1; }
            eval "${tool}_frozen+=($f) ${tool}_durable+=($d) ${tool}_restore+=($r) ${tool}_bytes+=($b)"
            rm -rf "$WORK/$tool$i"
        done
    fi
done
peer() {   # peer TOOL FIGURE: the median, or - when the peers were not run
    local -n values=${1}_$2
    if [[ ${#values[@]} -gt 0 ]]; then median "${values[@]}"; else echo nan; fi
}

# LZ4: the same checkpoints of memory that compresses (each page repeats 64 bytes),
# without and with UNDERSTUDY_COMPRESS=lz4
declare -A z_frozen z_durable z_bytes z_restore
for mode in none lz4; do
    frozen=() durable=() bytes=() restores=()
    for i in $(seq "$RUNS"); do
        g=z$mode$i
        echo "run $i/$RUNS: compressible ${SIZE} MiB, compression $mode" >&2
        "$HACTL" launch "$g" $AGENT --env "UNDERSTUDY_COMPRESS=$mode" -- "$ROOT/out/bench/wl_bench" "$SIZE" compressible >/dev/null
        wait_line "$g" '^ready'
        r=$("$HACTL" checkpoint "$g" --full $AGENT --json)
        frozen+=("$(json 'd["frozenMs"]' <<<"$r")") durable+=("$(json 'd["durationMs"]' <<<"$r")") bytes+=("$(json 'd["bytes"]' <<<"$r")")
        id=$(json 'd["id"]' <<<"$r")
        kill -9 "$(host_pid "$g")"
        sleep 0.5
        r=$("$HACTL" restore "$g" --checkpoint "$id" $AGENT --json)
        restores+=("$(json 'd["durationMs"]' <<<"$r")")
        kill -USR1 "$(host_pid "$g")"
        wait_line "$g" 'VERIFY OK'
        "$HACTL" stop "$g" $AGENT >/dev/null
    done
    z_frozen[$mode]=$(median "${frozen[@]}") z_durable[$mode]=$(median "${durable[@]}")
    z_bytes[$mode]=$(median "${bytes[@]}") z_restore[$mode]=$(median "${restores[@]}")
done

# tracking cost: first writes right after a checkpoint, per tracker
declare -A firstwrite
for tracker in none uffd mprotect; do
    g=fw-$tracker
    "$HACTL" launch "$g" $AGENT --env "UNDERSTUDY_TRACKER=$tracker" -- "$ROOT/out/bench/wl_bench" 256 >/dev/null
    wait_line "$g" '^ready'
    vals=()
    for _ in $(seq "$RUNS"); do
        "$HACTL" checkpoint "$g" $AGENT --json >/dev/null
        before=$(grep -c '^firstwrite' "$WORK/state/groups/$g/output.log" || true)
        kill -USR2 "$(host_pid "$g")"
        for _ in $(seq 100); do
            [[ $(grep -c '^firstwrite' "$WORK/state/groups/$g/output.log") -gt $before ]] && break; sleep 0.1
        done
        vals+=("$(grep '^firstwrite' "$WORK/state/groups/$g/output.log" | tail -1 | cut -d' ' -f2)")
    done
    firstwrite[$tracker]=$(printf '%s\n' "${vals[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    "$HACTL" stop "$g" $AGENT >/dev/null
done

python3 - "$SIZE" "$RUNS" "$(median "${full_frozen[@]}")" "$(median "${full_durable[@]}")" "$(median "${full_bytes[@]}")" \
    "$(median "${inc_frozen[@]}")" "$(median "${inc_durable[@]}")" "$(median "${inc_bytes[@]}")" "$(median "${restore_ms[@]}")" \
    "${firstwrite[none]}" "${firstwrite[uffd]}" "${firstwrite[mprotect]}" \
    "${z_frozen[none]}" "${z_durable[none]}" "${z_bytes[none]}" "${z_restore[none]}" \
    "${z_frozen[lz4]}" "${z_durable[lz4]}" "${z_bytes[lz4]}" "${z_restore[lz4]}" \
    "$(peer dmtcp frozen)" "$(peer dmtcp durable)" "$(peer dmtcp bytes)" "$(peer dmtcp restore)" \
    "$(peer criu frozen)" "$(peer criu durable)" "$(peer criu bytes)" "$(peer criu restore)" <<'PY'
import math, sys
size, runs = sys.argv[1:3]
ff, fd, fb, inf, ind, ib, rs, fw0, fwu, fwm, zf0, zd0, zb0, zr0, zf, zd, zb, zr, \
    df, dd, db, dr, cf, cd, cb, cr = map(float, sys.argv[3:])
def ms(v): return "-" if math.isnan(v) else f"{v:.0f} ms"
def mb(v): return "-" if math.isnan(v) else f"{v/1e6:.0f} MB"
print(f"\nUnderstudy benchmark: {size} MiB process, 5 % of pages rewritten per second, median of {runs} runs")
print("DMTCP and CRIU: measured in the same runs (bench/peers.sh), '-' without --peers\n")
rows = [
    ("frozen, full checkpoint", ms(df), ms(cf), "<= 50 ms", f"{ff:.0f} ms"),
    ("durable, full checkpoint (+ sync for peers)", ms(dd), ms(cd), "<= 700 ms", f"{fd:.0f} ms"),
    ("full image size", mb(db), mb(cb), "-", f"{fb/1e6:.0f} MB"),
    ("frozen, incremental (5 % dirty)", "none", "none", "<= 10 ms", f"{inf:.0f} ms"),
    ("durable, incremental", "-", "-", "-", f"{ind:.0f} ms"),
    ("incremental size / full", "100 %", "-", "<= 6 %", f"{ib/1e6:.0f} MB = {100*ib/fb:.1f} %"),
    ("restore, command to first write (resident)", ms(dr), ms(cr), "<= 0.5 s", f"{rs:.0f} ms"),
    ("first write after checkpoint, uffd", "-", "-", "<= 2 us extra", f"{fwu/1000:.2f} us ({(fwu-fw0)/1000:+.2f} us vs none)"),
    ("first write after checkpoint, mprotect", "-", "-", "-", f"{fwm/1000:.2f} us ({(fwm-fw0)/1000:+.2f} us vs none)"),
    ("compressible memory: full image, raw / lz4", "-", "-", "-", f"{zb0/1e6:.0f} MB / {zb/1e6:.0f} MB"),
    ("compressible memory: frozen, raw / lz4", "-", "-", "<= 50 ms", f"{zf0:.0f} ms / {zf:.0f} ms"),
    ("compressible memory: durable, raw / lz4", "-", "-", "-", f"{zd0:.0f} ms / {zd:.0f} ms"),
    ("compressible memory: restore, raw / lz4", "-", "-", "<= 0.5 s", f"{zr0:.0f} ms / {zr:.0f} ms"),
]
head = ("figure", "DMTCP", "CRIU 4.2", "target", "Understudy")
w = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
for r in [head] + rows:
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
PY
