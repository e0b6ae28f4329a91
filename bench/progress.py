"""What the benchmark workload's own output says about a checkpoint or a restore.

wl_bench prints "count N at MS" once per tick (MS: CLOCK_MONOTONIC milliseconds, the same
clock as now()). The application's view of a checkpoint is the longest stretch without a
tick during it, less one ordinary tick. A restore is timed from the host's side, from the
restore command to the first write to the log: a restored process may run in a time
namespace whose clock continues from the checkpoint (CRIU's does).

  progress.py now                    CLOCK_MONOTONIC in ms
  progress.py frozen LOG T0 T1       ms the process made no progress while [T0, T1] ran
  progress.py restore LOG [--into-log] -- CMD...
                                     starts CMD (in the background, in a session of its
                                     own) and prints the ms until LOG is written to;
                                     --into-log: CMD's output goes to LOG (DMTCP's restored
                                     process writes to dmtcp_restart's stdout)
"""
import os
import subprocess
import re
import statistics
import sys
import time

TICK = re.compile(rb"^count \d+ at (\d+)$", re.M)


def ticks(log):
    with open(log, "rb") as f:
        return [int(m.group(1)) for m in TICK.finditer(f.read())]


def frozen(log, t0, t1):
    times = ticks(log)
    gaps = [b - a for a, b in zip(times, times[1:])]
    if not gaps:
        raise SystemExit(f"progress: {log} has fewer than two ticks")
    ordinary = statistics.median(gaps)
    during = [b - a for a, b in zip(times, times[1:]) if b >= t0 and a <= t1]
    return max(0, max(during, default=ordinary) - ordinary)


def restore(log, into_log, command, timeout_s=120):
    before = os.stat(log).st_mtime_ns
    output = open(log, "ab") if into_log else subprocess.DEVNULL
    t0 = time.monotonic()
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    while time.monotonic() - t0 < timeout_s:
        if os.stat(log).st_mtime_ns != before:
            print(f"{(time.monotonic() - t0) * 1000:.0f}")
            return 0
        if child.poll() not in (None, 0):
            print(f"progress: {command[0]} failed with exit code {child.returncode}", file=sys.stderr)
            return 1
        time.sleep(0.002)
    print(f"progress: {log} was not written to within {timeout_s} s of {command[0]}", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) == 2 and argv[1] == "now":
        print(int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1000))
    elif len(argv) == 5 and argv[1] == "frozen":
        print(f"{frozen(argv[2], int(argv[3]), int(argv[4])):.0f}")
    elif len(argv) >= 5 and argv[1] == "restore" and argv[3] == "--":
        return restore(argv[2], False, argv[4:])
    elif len(argv) >= 6 and argv[1] == "restore" and argv[3:5] == ["--into-log", "--"]:
        return restore(argv[2], True, argv[5:])
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
