namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Counts a group's recoveries within the policy's window: more than maxAttempts of them means a
/// crash loop, and the group is stopped and marked failed instead.
/// </summary>
internal sealed class RecoveryWindow
{
    private readonly Queue<DateTimeOffset> _attempts = new();

    /// <summary>Counts one more attempt now; returns how many fall within <paramref name="window"/>.</summary>
    public int Record(DateTimeOffset now, TimeSpan window)
    {
        _attempts.Enqueue(now);
        return Count(now, window);
    }

    public int Count(DateTimeOffset now, TimeSpan window)
    {
        while (_attempts.Count > 0 && _attempts.Peek() <= now - window)
        {
            _attempts.Dequeue();
        }
        return _attempts.Count;
    }

    /// <summary>A fresh start by the operator forgives earlier failures.</summary>
    public void Clear() => _attempts.Clear();
}
