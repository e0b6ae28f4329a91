#!/usr/bin/env bash
# One round of a peer checkpointer on the benchmark workload, measured from the
# application's own view (bench/progress.py), as bench/run.sh measures Understudy:
# a full checkpoint of a running SIZE MiB wl_bench made durable (sync), kill -9, restore,
# and the restored process checks every page. Prints one line:
#   frozen_ms durable_ms restore_ms image_bytes
#   bench/peers.sh criu|dmtcp PEERS_DIR SIZE_MIB WL_BENCH WORK_DIR
# PEERS_DIR holds criu/criu and dmtcp/bin/. DMTCP's coordinator listens on every
# interface: run.sh runs this round in a network namespace of its own (loopback only).
set -euo pipefail
[[ $# -eq 5 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
TOOL=$1 PEERS=$2 SIZE=$3 WL=$4 WORK=$5
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
now() { python3 "$HERE/progress.py" now; }
fail() { echo "peers: $TOOL: $*" >&2; exit 1; }
wait_for() {   # wait_for FILE PATTERN
    for _ in $(seq 1200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    fail "the workload never printed '$2' (see $1)"
}
verify() {   # verify PID: SIGUSR1, and the workload checks every page
    local before
    before=$(grep -c 'VERIFY OK' "$WORK/out.log" || true)
    kill -USR1 "$1"
    for _ in $(seq 1200); do
        [[ $(grep -c 'VERIFY OK' "$WORK/out.log" || true) -gt $before ]] && return 0
        grep -q 'FAIL' "$WORK/out.log" && fail "the restored workload failed its check"
        sleep 0.1
    done
    fail "the restored workload never answered its check"
}
pid="" port=""
cleanup() {
    if [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    fi
    [[ -n $port ]] && "$PEERS/dmtcp/bin/dmtcp_command" -p "$port" -q >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
mkdir -p "$WORK/images"
cd "$WORK"

case $TOOL in
criu)
    CRIU=$PEERS/criu/criu
    [[ -x $CRIU ]] || fail "$CRIU is missing"
    setsid "$WL" "$SIZE" </dev/null >"$WORK/out.log" 2>&1 &
    pid=$!
    wait_for "$WORK/out.log" '^ready'
    sleep 1
    t0=$(now)
    # --leave-stopped: the process writes nothing more to its log, whose size CRIU checks
    # on restore. CRIU keeps a process frozen until its dump is written, so the dump's
    # wall time is its frozen time.
    "$CRIU" dump -t "$pid" -D "$WORK/images" --leave-stopped -o dump.log || fail "dump failed (see $WORK/images/dump.log)"
    t1=$(now)
    sync -f "$WORK/images"
    t2=$(now)
    frozen=$((t1 - t0))
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    restore_ms=$(python3 "$HERE/progress.py" restore "$WORK/out.log" -- \
        "$CRIU" restore -D "$WORK/images" -d -o restore.log) || fail "restore failed (see $WORK/images/restore.log)"
    ;;
dmtcp)
    BIN=$PEERS/dmtcp/bin
    [[ -x $BIN/dmtcp_launch ]] || fail "$BIN/dmtcp_launch is missing"
    ip link set lo up 2>/dev/null || true
    "$BIN/dmtcp_coordinator" --daemon --port 0 --port-file "$WORK/port" --ckptdir "$WORK/images" \
        --timeout 600 -q -q >/dev/null 2>&1
    for _ in $(seq 100); do [[ -s $WORK/port ]] && break; sleep 0.05; done
    port=$(cat "$WORK/port")
    "$BIN/dmtcp_launch" -p "$port" --no-gzip --ckptdir "$WORK/images" "$WL" "$SIZE" </dev/null >"$WORK/out.log" 2>&1 &
    wait_for "$WORK/out.log" '^ready'
    sleep 1
    t0=$(now)
    "$BIN/dmtcp_command" -p "$port" -bc >/dev/null || fail "checkpoint failed"
    t1=$(now)
    sync -f "$WORK/images"
    t2=$(now)
    frozen=$(python3 "$HERE/progress.py" frozen "$WORK/out.log" "$t0" "$t1")
    "$BIN/dmtcp_command" -p "$port" -k >/dev/null
    for _ in $(seq 100); do pgrep -x wl_bench >/dev/null || break; sleep 0.05; done
    restore_ms=$(python3 "$HERE/progress.py" restore "$WORK/out.log" --into-log -- \
        "$BIN/dmtcp_restart" -p "$port" "$WORK"/images/ckpt_*.dmtcp) || fail "restart failed"
    ;;
*) fail "unknown tool (criu or dmtcp)" ;;
esac

# DMTCP renames the processes it restarts
pid=$(pgrep -n -x wl_bench || pgrep -n -x DMTCP:wl_bench) || fail "no restored wl_bench process"
verify "$pid"
echo "$frozen $((t2 - t0)) $restore_ms $(du -sb "$WORK/images" | cut -f1)"
