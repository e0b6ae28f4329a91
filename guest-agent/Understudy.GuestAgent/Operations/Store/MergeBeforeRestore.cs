namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// The native restorer reads full images only: a checkpoint that still has incremental images
/// is merged first, right away and at normal priority (recursively, if its base is unmerged too),
/// with the same engine and the same crash-safe steps as the background merges.
/// </summary>
internal sealed class MergeBeforeRestore
{
    private readonly CheckpointMerger _merger;
    private readonly GroupStoreLocks _locks;

    public MergeBeforeRestore(CheckpointMerger merger, GroupStoreLocks locks)
    {
        _merger = merger;
        _locks = locks;
    }

    /// <returns>Whether something had to be merged.</returns>
    /// <exception cref="CheckpointMergeException">The chain is broken or corrupt.</exception>
    public async Task<bool> RunAsync(string group, string id, CancellationToken cancellationToken)
    {
        var groupLock = _locks.For(group);
        // A background merge of this group finishes first: it may be merging this very chain.
        await groupLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => _merger.Merge(group, id, "a restore needs a full image", pace: null, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
        }
        finally
        {
            groupLock.Release();
        }
    }
}
