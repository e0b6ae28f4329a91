using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>A checkpoint that should be merged into full images, and why (for the log).</summary>
internal sealed record MergeRequest(string Group, string Id, string Reason);

/// <summary>
/// The one owner of this node's checkpoint store: the only code that creates a staging directory,
/// commits a checkpoint (manifest fsync and rename), rewrites one (a merge replaces its images and
/// manifest) or deletes one (retention, and what a crash left). Paths and formats are the image
/// library's <see cref="CheckpointStore"/>; reading (list, verify, inspect) goes to it directly.
/// <para>
/// A pin (<see cref="Pin"/>) keeps a checkpoint and its base chain as they are until it is released:
/// a background merge that would rewrite any of them is deferred and asked for again at the release,
/// a migration target's merge (<see cref="MergeForRestoreAsync"/>) waits for the release, and retention leaves them and deletes what it left once
/// released.
/// </para>
/// </summary>
internal sealed class CheckpointKeeper
{
    private readonly CheckpointStore _store;
    private readonly CheckpointMerger _merger;
    private readonly IEventPublisher _events;
    private readonly ILogger<CheckpointKeeper> _logger;

    // Guards the pin table and what was deferred because of it, and makes "is it pinned?" and the
    // change it allows one step: a pin reading its chain, a merge replacing a manifest, retention
    // deciding and deleting manifests. Held briefly, never across the work of a merge.
    private readonly object _sync = new();
    private readonly PinTable _pins = new();
    private readonly Dictionary<(string Group, string Id), MergeRequest> _deferredMerges = [];
    private readonly Dictionary<string, int> _deferredRetention = new(StringComparer.Ordinal);
    // Retention that kept bases for an incremental chain: run again when a merge ends, which may
    // have made them unneeded.
    private readonly Dictionary<string, int> _retentionAfterMerge = new(StringComparer.Ordinal);
    // Completed at every release, so that a merge waiting for a pinned chain looks again.
    private TaskCompletionSource _released = NewSignal();

    // One merge of a group at a time: two merges (a migration target's and the background's) could rewrite
    // the same checkpoint.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _mergeLocks = new(StringComparer.Ordinal);

    // Holds a group's background merges while the group is being checkpointed.
    private readonly MergePauses _pauses = new();

    public CheckpointKeeper(CheckpointStore store, CheckpointMerger merger, IEventPublisher events, ILogger<CheckpointKeeper> logger)
    {
        _store = store;
        _merger = merger;
        _events = events;
        _logger = logger;
    }

    /// <summary>
    /// A checkpoint should be merged in the background: one was committed with incremental images,
    /// a deferred merge may run now that a pin was released. The background merges listen.
    /// </summary>
    public event Action<MergeRequest>? MergeWanted;

    /// <summary>
    /// Claims the group's next checkpoint id and creates its staging directory; the group's
    /// background merges wait until the returned checkpoint is disposed.
    /// </summary>
    public StagedCheckpoint BeginCheckpoint(string group)
    {
        var paused = _pauses.Pause(group);
        try
        {
            var (id, seq, dir) = _store.CreateStaging(group);
            return new StagedCheckpoint(this, group, id, seq, dir, paused);
        }
        catch
        {
            paused.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the staging directory of a copy of another node's checkpoint, under that checkpoint's
    /// own id: created if new, kept with what it holds if a transfer of it was broken off. The
    /// group's background merges wait until the returned checkpoint is disposed; disposing it
    /// without a commit keeps the files for the transfer to go on.
    /// </summary>
    /// <exception cref="InvalidOperationException">The checkpoint is committed already.</exception>
    public StagedCheckpoint BeginReplica(string group, string id)
    {
        var paused = _pauses.Pause(group);
        try
        {
            var dir = _store.OpenStaging(group, id);
            return new StagedCheckpoint(this, group, id, CheckpointId.Parse(id), dir, paused);
        }
        catch
        {
            paused.Dispose();
            throw;
        }
    }

    /// <summary>Removes a staging checkpoint that will not be finished (a copy superseded by a newer one).</summary>
    public void DiscardStaging(string group, string id) => _store.DiscardStaging(group, id);

    /// <summary>
    /// A checkpoint was committed, taken here or received: called synchronously inside the commit,
    /// before its background merge is asked for and while the group's merges are still held, so
    /// that a replicator can pin it before anything rewrites it.
    /// </summary>
    public event Action<CheckpointInfo>? Committed;

    /// <summary>
    /// Holds the group's background merges until the returned object is disposed (a restore: a
    /// merge would compete with it for the disk). A merge in progress waits at its next chunk.
    /// </summary>
    public IDisposable PauseMerges(string group) => _pauses.Pause(group);

    /// <summary>Whether the group's background merges are held (it is being checkpointed or restored).</summary>
    public bool AreMergesPaused(string group) => _pauses.IsPaused(group);

    /// <summary>
    /// The members of a checkpoint taken here are writing its images (<see cref="StagedCheckpoint.Writing"/>):
    /// called synchronously, while its files are still in the staging directory, so that a replicator
    /// can open them before the commit moves them.
    /// </summary>
    public event Action<WritingCheckpoint>? Writing;

    internal void OnWriting(WritingCheckpoint writing) => Writing?.Invoke(writing);

    internal CheckpointInfo Commit(StagedCheckpoint staged, CheckpointManifest manifest)
    {
        var committed = _store.Commit(staged.Group, staged.Id, manifest);
        Committed?.Invoke(committed);
        if (manifest.HasIncrementalMembers)
        {
            MergeWanted?.Invoke(new MergeRequest(staged.Group, staged.Id, "committed incremental"));
        }
        return committed;
    }

    internal void Discard(StagedCheckpoint staged) => _store.DiscardStaging(staged.Group, staged.Id);

    /// <summary>
    /// Keeps checkpoint <paramref name="id"/> of <paramref name="group"/> and every checkpoint it
    /// needs (its bases, and theirs: <see cref="CheckpointChains.Closure"/>) as they are until the
    /// pin is disposed: no merge rewrites them and retention does not delete them.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">The checkpoint does not exist.</exception>
    /// <exception cref="ImageFormatException">Its manifest is corrupt.</exception>
    public CheckpointPin Pin(string group, string id)
    {
        var seq = CheckpointId.Parse(id);
        lock (_sync)
        {
            var chain = CheckpointChains.Closure(_store, group, seq);
            _pins.Pin(group, chain);
            return new CheckpointPin(group, id, chain, pin => Release(pin.Group, () => _pins.Unpin(pin.Group, pin.Chain), pinReleased: true));
        }
    }

    /// <summary>
    /// Merges a checkpoint of the group on the background merge thread: waits while the group is
    /// being checkpointed, then merges the one <paramref name="take"/> chooses (chosen only then:
    /// checkpoints committed meanwhile are newer, and the newest goes first), and is deferred if it
    /// would rewrite a pinned checkpoint (asked for again when the pin is released). A failure is
    /// logged: the checkpoint stays incremental, and restores read its chain as it is.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="stopping"/> was cancelled.</exception>
    public void MergeInBackground(string group, Func<string, MergeRequest> take, CancellationToken stopping)
    {
        var mergeLock = MergeLock(group);
        mergeLock.Wait(stopping);
        var id = "";
        try
        {
            _pauses.WaitWhilePaused(group, stopping);
            var request = take(group);
            id = request.Id;
            Merge(group, id, request.Reason, () => _pauses.WaitWhilePaused(group, stopping), deferAs: request, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw;
        }
        catch (CheckpointPinnedException e)
        {
            _logger.LogInformation("Merge of checkpoint {CheckpointId} of group {Group} deferred until released: {Reason}", id, group, e.Message);
        }
        catch (CheckpointNotFoundException)
        {
            // Deleted by retention while its merge waited behind newer ones: common, not news.
            _logger.LogDebug("Checkpoint {CheckpointId} of group {Group} is gone; nothing to merge", id, group);
        }
        catch (Exception e) when (e is CheckpointMergeException or IOException or UnauthorizedAccessException)
        {
            // The merger logged it; the checkpoint stays incremental: restores read its chain as it is.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Merge of checkpoint {CheckpointId} of group {Group} failed unexpectedly: {Error}", id, group, e.Message);
        }
        finally
        {
            mergeLock.Release();
        }
    }

    /// <summary>
    /// Merges a checkpoint that still has incremental images (and its unmerged bases) right away, at
    /// normal priority, waiting first for a background merge of the group and for pins on what it
    /// would rewrite: a migration target's, while the group still runs on the source, so that the
    /// chain it restores from is short. A restore itself reads the chain as it is. The chain is then
    /// verified as for a restore.
    /// </summary>
    /// <returns>Whether something had to be merged.</returns>
    /// <exception cref="CheckpointMergeException">The chain is broken or corrupt.</exception>
    /// <exception cref="ImageFormatException">An image of the chain does not verify.</exception>
    public async Task<bool> MergeForRestoreAsync(string group, string id, CancellationToken cancellationToken)
    {
        var mergeLock = MergeLock(group);
        while (true)
        {
            Task released;
            lock (_sync)
            {
                released = _released.Task;
            }
            await mergeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var merged = await Task.Run(
                    () => Merge(group, id, "a migration target makes its chain short", pace: null, deferAs: null, cancellationToken), cancellationToken)
                    .ConfigureAwait(false);
                // Read whole now, while the group still runs on the source: the takeover's restore
                // then reads again only what came after (VerifyForRestore's reuse, for files
                // changed at least ReusableAfter before they are read).
                await Task.Delay(CheckpointStore.ReusableAfter, cancellationToken).ConfigureAwait(false);
                await Task.Run(() => _store.VerifyForRestore(group, id), cancellationToken).ConfigureAwait(false);
                return merged;
            }
            catch (CheckpointPinnedException e)
            {
                _logger.LogInformation("Restore of group {Group} waits for a pin to be released: {Reason}", group, e.Message);
            }
            finally
            {
                mergeLock.Release();
            }
            await released.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Keeps the group's newest <paramref name="keep"/> committed checkpoints and those they need
    /// (<see cref="RetentionPlan"/>), and deletes the others, each losing its manifest first: from
    /// then on it does not exist, even if removing its files is interrupted. Pinned ones and those a
    /// merge is reading are left until released, then deleted.
    /// </summary>
    public void ApplyRetention(string group, int keep)
    {
        var deleted = new List<CheckpointInfo>();
        lock (_sync)
        {
            var usable = _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind).ToList();
            RetentionPlan plan;
            try
            {
                plan = RetentionPlan.Decide(usable, keep,
                    c => CheckpointChains.BasesOf(_store.LoadManifest(group, c.Id)), seq => _pins.IsHeld(group, seq));
            }
            catch (Exception e) when (e is CheckpointNotFoundException or ImageFormatException or IOException)
            {
                // Without every chain known, nothing is certain to be unneeded.
                _logger.LogWarning("Retention of group {Group} skipped: a checkpoint's manifest cannot be read: {Error}", group, e.Message);
                return;
            }
            if (plan.Held.Count > 0)
            {
                _deferredRetention[group] = keep;
                _logger.LogInformation(
                    "Retention of group {Group} keeps checkpoints {CheckpointIds} until they are released",
                    group, string.Join(", ", plan.Held.Select(c => c.Id)));
            }
            else
            {
                _deferredRetention.Remove(group);
            }
            if (plan.KeepsBases)
            {
                _retentionAfterMerge[group] = keep;
            }
            else
            {
                _retentionAfterMerge.Remove(group);
            }
            foreach (var checkpoint in plan.Delete)
            {
                try
                {
                    File.Delete(Path.Combine(checkpoint.Directory, CheckpointManifest.FileName));
                    deleted.Add(checkpoint);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning("Could not delete checkpoint {CheckpointId} of group {Group}: {Error}", checkpoint.Id, group, e.Message);
                }
            }
        }
        foreach (var checkpoint in deleted)
        {
            try
            {
                Directory.Delete(checkpoint.Directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning(
                    "Checkpoint {CheckpointId} of group {Group} is deleted, but its files could not be removed: {Error}", checkpoint.Id, group, e.Message);
            }
        }
        if (deleted.Count > 0)
        {
            _events.Publish(new CheckpointsDeleted(group, deleted.Select(c => c.Id).ToList(), keep));
        }
    }

    /// <summary>
    /// At start, what a killed agent left: staging directories (checkpoints that were never
    /// committed) and the files of half-done merges go.
    /// </summary>
    /// <returns>The checkpoints still incremental, to be merged.</returns>
    public IReadOnlyList<MergeRequest> CleanUpAfterCrash()
    {
        var unmerged = new List<MergeRequest>();
        foreach (var group in _store.GroupNames())
        {
            try
            {
                _store.DiscardAllStaging(group);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("Could not discard the staging checkpoints of group {Group}: {Error}", group, e.Message);
            }
            foreach (var checkpoint in _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind))
            {
                try
                {
                    var removed = _store.RemoveUnreferencedFiles(group, checkpoint.Id);
                    if (removed.Count > 0)
                    {
                        _logger.LogWarning(
                            "Checkpoint {CheckpointId} of group {Group}: removed {Files}, left by a merge the agent did not finish",
                            checkpoint.Id, group, string.Join(", ", removed));
                    }
                    if (_store.LoadManifest(group, checkpoint.Id).HasIncrementalMembers)
                    {
                        unmerged.Add(new MergeRequest(group, checkpoint.Id, "left unmerged when the agent last stopped"));
                    }
                }
                catch (Exception e) when (e is ImageFormatException or CheckpointNotFoundException or IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning("Checkpoint {CheckpointId} of group {Group} could not be checked for unfinished merges: {Error}", checkpoint.Id, group, e.Message);
                }
            }
        }
        return unmerged;
    }

    /// <summary>
    /// Merges the checkpoint and the bases it needs merged first, unless that would rewrite a pinned
    /// checkpoint; checked before the work and again at each manifest replacement, where a pin taken
    /// meanwhile stops the merge. The caller holds the group's merge lock.
    /// </summary>
    /// <param name="deferAs">for a background merge: recorded, under the same lock as the check, to be asked for again at the release</param>
    private bool Merge(string group, string id, string reason, Action? pace, MergeRequest? deferAs, CancellationToken cancellationToken)
    {
        var seq = CheckpointId.Parse(id);
        IReadOnlySet<long> read;
        lock (_sync)
        {
            IReadOnlySet<long> rewritten;
            try
            {
                rewritten = CheckpointChains.RewrittenByMerge(_store, group, seq);
                read = CheckpointChains.Closure(_store, group, seq);
            }
            catch (ImageFormatException e)
            {
                throw new CheckpointMergeException(e.Message, e);
            }
            if (rewritten.Count == 0)
            {
                return false;
            }
            ThrowIfPinned(group, id, rewritten, deferAs);
            _pins.MarkMerging(group, read);
        }
        try
        {
            return _merger.Merge(group, id, reason, pace, (mergedId, manifest) => ReplaceManifest(group, mergedId, manifest, deferAs), cancellationToken);
        }
        finally
        {
            Release(group, () => _pins.UnmarkMerging(group, read), pinReleased: false);
        }
    }

    /// <summary>The moment a merge changes a committed checkpoint: refused if it was pinned since the merge began.</summary>
    private void ReplaceManifest(string group, string id, CheckpointManifest manifest, MergeRequest? deferAs)
    {
        lock (_sync)
        {
            ThrowIfPinned(group, id, [CheckpointId.Parse(id)], deferAs);
            _store.ReplaceManifest(group, id, manifest);
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private void ThrowIfPinned(string group, string id, IEnumerable<long> seqs, MergeRequest? deferAs)
    {
        var pinned = seqs.Where(seq => _pins.IsPinned(group, seq)).Order().ToList();
        if (pinned.Count == 0)
        {
            return;
        }
        if (deferAs is not null)
        {
            _deferredMerges[(deferAs.Group, deferAs.Id)] = deferAs;
        }
        throw new CheckpointPinnedException(group, id, pinned);
    }

    /// <summary>
    /// Something held is let go: what waited for it may go on. A released pin lets deferred merges be
    /// asked for again; any release lets deferred retention run; the end of a merge, also retention
    /// that kept bases the merge may have made unneeded.
    /// </summary>
    private void Release(string group, Action release, bool pinReleased)
    {
        var merges = new List<MergeRequest>();
        int? keep;
        lock (_sync)
        {
            release();
            if (pinReleased)
            {
                foreach (var key in _deferredMerges.Keys.Where(k => k.Group == group).ToList())
                {
                    merges.Add(_deferredMerges[key]);
                    _deferredMerges.Remove(key);
                }
            }
            keep = _deferredRetention.TryGetValue(group, out var deferred) ? deferred
                : !pinReleased && _retentionAfterMerge.TryGetValue(group, out var afterMerge) ? afterMerge
                : null;
            var released = _released;
            _released = NewSignal();
            released.TrySetResult();
        }
        foreach (var merge in merges)
        {
            MergeWanted?.Invoke(merge);
        }
        if (keep is { } retention)
        {
            ApplyRetention(group, retention);
        }
    }

    private SemaphoreSlim MergeLock(string group) => _mergeLocks.GetOrAdd(group, _ => new SemaphoreSlim(1, 1));

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
