using System.Collections.Concurrent;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// Finds and kills the processes the tests caused. The test process is a child
/// subreaper (<see cref="Native.BecomeSubreaper"/>), so everything the agent starts
/// stays below it even when orphaned; a process is only ever signalled when it is
/// one of our descendants, never by name.
/// </summary>
public static class ProcessSweeper
{
    /// <summary>Children started through System.Diagnostics.Process: .NET reaps those itself.</summary>
    private static readonly ConcurrentDictionary<int, byte> DotnetChildren = new();

    /// <summary>Agents of fixtures that are still alive: their subtrees are not swept by others.</summary>
    private static readonly ConcurrentDictionary<int, byte> LiveAgents = new();

    public static void RegisterDotnetChild(int pid) => DotnetChildren[pid] = 0;
    public static void RegisterAgent(int pid) => LiveAgents[pid] = 0;
    public static void UnregisterAgent(int pid) => LiveAgents.TryRemove(pid, out _);

    /// <summary>All descendants of <paramref name="root"/> (not the root itself).</summary>
    public static HashSet<int> Descendants(int root, IReadOnlyDictionary<int, Native.ProcStat> snapshot,
        ISet<int>? prune = null)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var p in snapshot.Values)
        {
            if (!children.TryGetValue(p.PPid, out var list))
            {
                children[p.PPid] = list = new List<int>();
            }

            list.Add(p.Pid);
        }
        var result = new HashSet<int>();
        var stack = new Stack<int>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            int pid = stack.Pop();
            if (!children.TryGetValue(pid, out var kids))
            {
                continue;
            }

            foreach (int kid in kids)
            {
                if (prune is not null && prune.Contains(kid))
                {
                    continue;
                }

                if (result.Add(kid))
                {
                    stack.Push(kid);
                }
            }
        }
        return result;
    }

    /// <summary>
    /// True if pid is a live descendant of the test process. The walk up its parents reads one
    /// /proc file at a time, so a parent may exit and be reaped between two reads: a member
    /// killed just before, whose child the kernel has meanwhile given to the group's us-init.
    /// That is not a broken chain: the walk starts again from pid, which now names its new parent.
    /// </summary>
    /// <param name="beforeParentRead">called with each parent before the walk reads it (a test reaps one there)</param>
    public static bool IsOurs(int pid, Action<int>? beforeParentRead = null)
    {
        if (pid <= 1)
        {
            return false;
        }

        int self = Native.GetPid();
        for (int walks = 0; walks < 16; walks++)
        {
            bool? ours = WalkUp(pid, self, beforeParentRead);
            if (ours is not null)
            {
                return ours.Value;
            }
        }
        return false;
    }

    /// <summary>One walk from pid up: true at the test process, false off our tree, null if a parent vanished under it.</summary>
    private static bool? WalkUp(int pid, int self, Action<int>? beforeParentRead)
    {
        for (int hops = 0, cur = pid; hops < 4096; hops++)
        {
            var st = Native.ReadStat(cur);
            if (st is null)
            {
                return cur == pid ? false : null;
            }

            if (st.PPid == self)
            {
                return true;
            }

            if (st.PPid <= 1)
            {
                return false;
            }

            cur = st.PPid;
            beforeParentRead?.Invoke(cur);
        }
        return false;
    }

    /// <summary>
    /// Sends sig to each pid that is one of ours; returns the pids signalled. Which are ours is
    /// settled for all of them before the first signal: a kill changes the tree the others are
    /// found in.
    /// </summary>
    public static List<int> Signal(IEnumerable<int> pids, int sig)
    {
        var ours = pids.Distinct().Where(p => IsOurs(p)).ToList();
        return ours.Where(pid => Native.Kill(pid, sig)).ToList();
    }

    /// <summary>Waits until none of the pids is running (zombies count as gone).</summary>
    public static async Task<bool> WaitGone(IEnumerable<int> pids, TimeSpan timeout)
    {
        var list = pids.ToList();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (list.All(p => !Native.IsRunning(p)))
            {
                return true;
            }

            await Task.Delay(50);
        }
        return list.All(p => !Native.IsRunning(p));
    }

    /// <summary>
    /// Each pid of <paramref name="pids"/> that still runs, with what its threads wait for
    /// (<see cref="Native.DescribeThreads"/>): a process that survives kill -9 is a kernel
    /// wait to be named, not a timeout.
    /// </summary>
    public static string DescribeSurvivors(IEnumerable<int> pids) =>
        string.Concat(pids.Where(Native.IsRunning).Select(Native.DescribeThreads));

    /// <summary>
    /// Kills every descendant of the test process outside the subtrees of live agents
    /// (their process groups too, when they lead one), until none is left, then reaps
    /// the zombies that were reparented to us.
    /// </summary>
    public static async Task SweepAsync(TimeSpan timeout)
    {
        int self = Native.GetPid(), ownGroup = Native.GetPgrp();
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var snap = Native.Snapshot();
            var prune = new HashSet<int>(LiveAgents.Keys);
            var victims = Descendants(self, snap, prune)
                .Where(p => snap.TryGetValue(p, out var s) && s.State != 'Z' && s.State != 'X')
                .ToList();
            if (victims.Count == 0 || DateTime.UtcNow > deadline)
            {
                break;
            }

            foreach (int pid in victims)
            {
                var st = snap[pid];
                if (st.Pgid == pid && st.Pgid != ownGroup)
                {
                    Native.KillGroup(st.Pgid, Native.SIGKILL);
                }

                Native.Kill(pid, Native.SIGKILL);
            }
            await Task.Delay(100);
        }
        // Killed orphans turn into our zombies a moment later.
        for (int i = 0; i < 5; i++)
        {
            ReapZombies();
            await Task.Delay(50);
        }
    }

    /// <summary>Reaps our zombie children that .NET does not know about (orphans we adopted).</summary>
    public static void ReapZombies()
    {
        int self = Native.GetPid();
        foreach (var st in Native.Snapshot().Values)
        {
            if (st.PPid == self && st.State == 'Z' && !DotnetChildren.ContainsKey(st.Pid))
            {
                Native.TryReap(st.Pid);
            }
        }
    }
}
