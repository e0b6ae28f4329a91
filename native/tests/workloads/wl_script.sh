#!/bin/bash
# wl_script.sh: runs a real pipeline, checks its result, then execs into
# wl_exec_parent (which forks a child that execs wl_exec_child).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
top=$(seq 1 1000 | sort -rn | head -n 1)
if [ "$top" != 1000 ]; then
	echo "FAIL script: pipeline printed '$top', expected 1000"
	exit 3
fi
echo "script pipeline ok $top pid $$"
exec "$dir/wl_exec_parent"
