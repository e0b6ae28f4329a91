# Sourced by benchmarks that need two nodes of one cluster: agents node-a and node-b on this
# host, each with its own state directory under $WORK, serving each other on loopback over
# mutual TLS (credentials of `hactl cluster init`). Needs $HACTL and $WORK; sets A and B (the
# --agent options of node-a and node-b), and stops both agents on exit (after the caller's
# on_exit, if it defines one). BENCH_KEEP=1 keeps $WORK (the agents' logs and state).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
two_agents_cleanup() {
    declare -F on_exit >/dev/null && on_exit
    for p in ${A_PID:-} ${B_PID:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    if [[ ${BENCH_KEEP:-} == 1 ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap two_agents_cleanup EXIT
A=(--agent "unix:$WORK/a.sock") B=(--agent "unix:$WORK/b.sock")
PA=$(port) PB=$(port)
"$HACTL" cluster init "$WORK/cluster" >/dev/null
"$HACTL" agent run --listen "unix:$WORK/a.sock" --state-dir "$WORK/a" --node node-a --cluster "$WORK/cluster" \
    --peer-listen "127.0.0.1:$PA" --peer "node-b=127.0.0.1:$PB" >"$WORK/a.log" 2>&1 &
A_PID=$!
"$HACTL" agent run --listen "unix:$WORK/b.sock" --state-dir "$WORK/b" --node node-b --cluster "$WORK/cluster" \
    --peer-listen "127.0.0.1:$PB" --peer "node-a=127.0.0.1:$PA" >"$WORK/b.log" 2>&1 &
B_PID=$!
for _ in $(seq 200); do "$HACTL" status "${A[@]}" >/dev/null 2>&1 && "$HACTL" status "${B[@]}" >/dev/null 2>&1 && break; sleep 0.1; done
