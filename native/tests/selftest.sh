#!/bin/bash
# selftest.sh DIR: runs every workload in DIR directly (without Understudy),
# asks each process to verify itself with SIGUSR1, and checks the answers:
# a "VERIFY OK <role>" per process, no FAIL line, and "count" lines that grow
# by exactly one. Exits nonzero on the first problem.
set -u
dir=$(cd "${1:?usage: selftest.sh WORKLOAD-DIR}" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait "${pids[@]}" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

die() { echo "selftest: $*" >&2; exit 1; }

# descendants PID: PID and every process below it.
descendants() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do descendants "$c"; done
}

wait_for() {  # FILE REGEX
	for _ in $(seq 1 300); do
		grep -qE "$2" "$1" && return 0
		grep -q '^FAIL' "$1" && die "$(grep -m1 '^FAIL' "$1")"
		sleep 0.1
	done
	die "timed out waiting for /$2/ in $1: $(tail -n 3 "$1")"
}

consecutive() {  # FILE TAG: "TAG N" lines must go 1, 2, 3, ...
	awk -v tag="$2" '
		index($0, tag " ") == 1 {
			split(substr($0, length(tag) + 2), f, " ")
			n = f[1] + 0
			if (seen && n != last + 1) { print "gap after " last ": " n; bad = 1; exit 1 }
			last = n; seen = 1
		}
		END { if (!seen && !bad) { print "no \"" tag "\" lines"; exit 1 } }' "$1" ||
		die "$1: '$2' lines are not consecutive"
}

run() {  # NAME VERIFY-ROLES COUNT-TAGS -- CMD...
	local name=$1 roles=$2 tags=$3
	shift 4
	local log=$work/$name.log
	: >"$log"
	"$@" >"$log" 2>&1 &
	local pid=$! r t
	pids+=("$pid")
	for t in $tags; do wait_for "$log" "^${t/_/ } [0-9]+"; done
	sleep 1
	for p in $(descendants "$pid"); do kill -USR1 "$p"; done
	for r in $roles; do wait_for "$log" "^VERIFY OK $r "; done
	sleep 0.5
	grep -q '^FAIL' "$log" && die "$(grep -m1 '^FAIL' "$log")"
	for t in $tags; do consecutive "$log" "${t/_/ }"; done
	for p in $(descendants "$pid"); do kill -9 "$p" 2>/dev/null; done
	{ wait "$pid"; } 2>/dev/null
	echo "ok $name: $(grep -c '^VERIFY OK' "$log") verified, $(wc -l <"$log") lines"
}

run_fifo() {  # two independent processes 1 s apart over a FIFO
	local fifo=$work/fifo
	: >"$work/writer.log"
	: >"$work/reader.log"
	"$dir/wl_fifo_writer" "$fifo" >"$work/writer.log" 2>&1 &
	local wpid=$!
	pids+=("$wpid")
	sleep 1
	"$dir/wl_fifo_reader" "$fifo" >"$work/reader.log" 2>&1 &
	local rpid=$!
	pids+=("$rpid")
	wait_for "$work/writer.log" '^writer count [0-9]+'
	wait_for "$work/reader.log" '^reader count [0-9]+'
	sleep 1
	kill -USR1 "$wpid" "$rpid"
	wait_for "$work/writer.log" '^VERIFY OK fifo-writer '
	wait_for "$work/reader.log" '^VERIFY OK fifo-reader '
	consecutive "$work/writer.log" "writer count"
	consecutive "$work/reader.log" "reader count"
	kill -9 "$wpid" "$rpid"
	{ wait "$wpid"; wait "$rpid"; } 2>/dev/null
	echo "ok fifo"
}

run memory  "memory" "count" -- "$dir/wl_memory" 64
run threads "threads" "count" -- "$dir/wl_threads"
run pipes   "pipes-parent pipes-child" "count" -- "$dir/wl_pipes"
run script  "exec-parent exec-child" "parent_count child_count" -- "$dir/wl_script.sh"
run counter "counter-x" "x_count" -- "$dir/wl_counter" x
run descriptors "descriptors" "count" -- "$dir/wl_descriptors" "$work"
run blocking "blocking" "count" -- "$dir/wl_blocking"
run tcp_pair "tcp-parent tcp-child" "parent_count child_count" -- "$dir/wl_tcp_pair"
run records "records-parent records-child" "parent_count child_count" -- "$dir/wl_records" "$work"
run udp_shared "udp-parent udp-worker1 udp-worker2" "parent_count worker1_count worker2_count" -- "$dir/wl_udp_shared"
run daemon  "daemon" "daemon_count" -- "$dir/wl_daemon" close_range
run dlopen "dlopen" "count" -- "$dir/wl_dlopen"
run timers "timers" "count" -- "$dir/wl_timers"
run memflags "memflags" "count" -- "$dir/wl_memflags"
run layers "layers" "count" -- "$dir/wl_layers" "$work"
# in an IPC namespace of its own, as in a group: nothing it makes outlives it
run ipc "ipc" "count" -- unshare --ipc "$dir/wl_ipc"
run cancel "cancel" "count" -- "$dir/wl_cancel"

run_fifo
echo "selftest: all workloads verified themselves"
