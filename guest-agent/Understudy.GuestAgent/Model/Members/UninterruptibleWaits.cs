namespace Understudy.GuestAgent.Model.Members;

/// <summary>
/// The uninterruptible (D) waits of one member's threads, as successive looks at /proc saw them.
/// A wait is the same one only while its thread stays in D without being switched out in between
/// (the same context-switch count): a thread that keeps going back to D for short disk waits, or
/// two looks that happen to catch two different waits, never add up to a long one.
/// </summary>
internal sealed class UninterruptibleWaits
{
    private readonly object _sync = new();
    private Dictionary<int, Wait> _waits = [];
    private DateTimeOffset _lastLook;

    /// <summary>Whether the last look saw a thread in D.</summary>
    public bool Any
    {
        get { lock (_sync) { return _waits.Count > 0; } }
    }

    /// <summary>Whether the last look saw a thread still in a wait that an earlier look saw already.</summary>
    public bool Lasting
    {
        get { lock (_sync) { return _waits.Values.Any(w => w.Since < _lastLook); } }
    }

    /// <summary>
    /// Records the threads seen in D now, each with its context-switch count, and returns since
    /// when the oldest of their waits has lasted, or null when none is in D.
    /// </summary>
    public DateTimeOffset? Observe(IEnumerable<(int Tid, long Switches)> waiting, DateTimeOffset now)
    {
        lock (_sync)
        {
            var next = new Dictionary<int, Wait>();
            foreach (var (tid, switches) in waiting)
            {
                next[tid] = _waits.TryGetValue(tid, out var seen) && seen.Switches == switches
                    ? seen
                    : new Wait(switches, now);
            }
            _waits = next;
            _lastLook = now;
            return next.Count == 0 ? null : next.Values.Min(w => w.Since);
        }
    }

    public void Clear()
    {
        lock (_sync)
        {
            _waits = [];
        }
    }

    private readonly record struct Wait(long Switches, DateTimeOffset Since);
}
