using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>
/// The processes one us-init reaped, by vpid, as its EXITED lines reported them, so that whoever
/// finds a process gone can learn how it ended. A vpid that LAUNCHED names again forgets its
/// earlier exit; only the most recent exits are remembered.
/// </summary>
internal sealed class ReapedProcesses
{
    private const int Memory = 1024;

    private readonly object _sync = new();
    private readonly Dictionary<int, Entry> _byVpid = [];
    // Oldest first, to forget the oldest entries; an entry replaced since is skipped.
    private readonly Queue<Entry> _order = new();

    /// <summary>A new process has <paramref name="vpid"/>: an exit recorded for it is an earlier process's.</summary>
    public void Launched(int vpid)
    {
        lock (_sync)
        {
            if (_byVpid.TryGetValue(vpid, out var entry) && entry.Exit.Task.IsCompleted)
            {
                _byVpid.Remove(vpid);
            }
        }
    }

    public void Record(InitExited exit)
    {
        lock (_sync)
        {
            if (!_byVpid.TryGetValue(exit.Vpid, out var entry) || entry.Exit.Task.IsCompleted)
            {
                entry = Add(exit.Vpid);
            }
            entry.Exit.TrySetResult(exit);
        }
    }

    /// <summary>Completes once the process with <paramref name="vpid"/> was reaped (at once if it already was).</summary>
    public Task<InitExited> WhenReaped(int vpid)
    {
        lock (_sync)
        {
            return (_byVpid.TryGetValue(vpid, out var entry) ? entry : Add(vpid)).Exit.Task;
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private Entry Add(int vpid)
    {
        var entry = new Entry(vpid, new TaskCompletionSource<InitExited>(TaskCreationOptions.RunContinuationsAsynchronously));
        _byVpid[vpid] = entry;
        _order.Enqueue(entry);
        while (_order.Count > Memory)
        {
            var old = _order.Dequeue();
            if (_byVpid.TryGetValue(old.Vpid, out var current) && ReferenceEquals(current, old))
            {
                _byVpid.Remove(old.Vpid);
            }
        }
        return entry;
    }

    private sealed record Entry(int Vpid, TaskCompletionSource<InitExited> Exit);
}
