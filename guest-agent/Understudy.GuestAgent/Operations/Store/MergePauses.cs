namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// Holds a group's background merge while the group is being checkpointed, so that the merge's
/// reads and writes never compete with a frozen group's capture and commit. A merge waits at its
/// next chunk (at most 1 MiB away) and goes on once the checkpoint is over. Part of
/// <see cref="CheckpointKeeper"/>: a staged checkpoint pauses its group's merges.
/// </summary>
internal sealed class MergePauses
{
    private readonly object _sync = new();
    private readonly Dictionary<string, (int Count, ManualResetEventSlim Resumed)> _groups = new(StringComparer.Ordinal);

    /// <summary>Pauses the group's merges until the returned object is disposed (nestable).</summary>
    public IDisposable Pause(string group)
    {
        lock (_sync)
        {
            var entry = Entry(group);
            entry.Resumed.Reset();
            _groups[group] = (entry.Count + 1, entry.Resumed);
        }
        return new Release(this, group);
    }

    public bool IsPaused(string group)
    {
        lock (_sync)
        {
            return _groups.TryGetValue(group, out var entry) && entry.Count > 0;
        }
    }

    /// <summary>Blocks while the group is paused.</summary>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    public void WaitWhilePaused(string group, CancellationToken cancellationToken)
    {
        ManualResetEventSlim resumed;
        lock (_sync)
        {
            resumed = Entry(group).Resumed;
        }
        resumed.Wait(cancellationToken);
    }

    private (int Count, ManualResetEventSlim Resumed) Entry(string group)
    {
        if (!_groups.TryGetValue(group, out var entry))
        {
            entry = (0, new ManualResetEventSlim(initialState: true));
            _groups[group] = entry;
        }
        return entry;
    }

    private void Resume(string group)
    {
        lock (_sync)
        {
            var entry = _groups[group];
            _groups[group] = (entry.Count - 1, entry.Resumed);
            if (entry.Count == 1)
            {
                entry.Resumed.Set();
            }
        }
    }

    private sealed class Release(MergePauses pauses, string group) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                pauses.Resume(group);
            }
        }
    }
}
