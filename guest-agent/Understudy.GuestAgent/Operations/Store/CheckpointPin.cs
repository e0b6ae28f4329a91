using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// Holds a committed checkpoint and its whole base chain as they are until disposed (see
/// <see cref="CheckpointKeeper.Pin"/>): what a replicator streaming it, a migration or a restore
/// reading it needs.
/// </summary>
internal sealed class CheckpointPin : IDisposable
{
    private readonly Action<CheckpointPin> _release;
    private int _released;

    public CheckpointPin(string group, string id, IReadOnlySet<long> chain, Action<CheckpointPin> release)
    {
        Group = group;
        Id = id;
        Chain = chain;
        _release = release;
    }

    public string Group { get; }

    public string Id { get; }

    /// <summary>The pinned checkpoint and every checkpoint it needs, by seq.</summary>
    public IReadOnlySet<long> Chain { get; }

    /// <summary>The chain's checkpoint ids, oldest first.</summary>
    public IReadOnlyList<string> ChainIds => Chain.Order().Select(CheckpointId.Format).ToList();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _release(this);
        }
    }
}

/// <summary>A merge would have rewritten a pinned checkpoint; it is deferred (or waits) until the pin is released.</summary>
internal sealed class CheckpointPinnedException(string group, string id, IReadOnlyList<long> pinned)
    : Exception($"merging checkpoint {group}/{id} would rewrite pinned checkpoint(s) {string.Join(", ", pinned.Select(CheckpointId.Format))}");
