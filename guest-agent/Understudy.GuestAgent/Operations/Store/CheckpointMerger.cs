using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>A merge of a checkpoint's incremental images could not be done; the message is one line.</summary>
internal sealed class CheckpointMergeException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Turns a committed checkpoint's incremental images into full ones (docs/image-format.md,
/// "Merging a checkpoint"), crash-safely:
/// <list type="number">
/// <item>each incremental member is merged, in one pass, with the chain of images it applies to down
/// to a full one (in its base checkpoint, the image of <see cref="ManifestMember.BaseImageVpid"/>:
/// its own vpid, or its parent's for a process forked since; and so on while that image is itself
/// incremental) into new files, &lt;vpid&gt;.merged.meta and .pages, written and fsynced. The bases
/// are read, not rewritten: only a chain longer than <see cref="CheckpointChains.MaxImagesPerMerge"/>
/// is cut by merging one of its checkpoints first;</item>
/// <item>the manifest naming them replaces manifest.json atomically (tmp file, fsync, rename,
/// fsync of the directory);</item>
/// <item>the incremental files, which nothing names any more, are deleted.</item>
/// </list>
/// Killed at any point, the checkpoint has either its old manifest (the chain, whose files are all
/// still there) or the new one (whose files are all on disk); what is left over is removed by
/// <see cref="CheckpointStore.RemoveUnreferencedFiles"/> at the next start. The merge engine of
/// <see cref="CheckpointKeeper"/>, and called by it alone: the keeper holds the group's merge lock
/// and replaces the manifest (step 2), where a pin can still stop the merge.
/// </summary>
internal sealed class CheckpointMerger
{
    private readonly CheckpointStore _store;
    private readonly MergeFaults _faults;
    private readonly TimeProvider _time;
    private readonly ILogger<CheckpointMerger> _logger;

    public CheckpointMerger(CheckpointStore store, MergeFaults faults, TimeProvider time, ILogger<CheckpointMerger> logger)
    {
        _store = store;
        _faults = faults;
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Merges checkpoint <paramref name="id"/> of <paramref name="group"/> if it still has
    /// incremental members (and, first, the steps of a chain too long for one pass).
    /// </summary>
    /// <param name="pace">called between chunks of work; may block (a paused merge) or throw.</param>
    /// <param name="replaceManifest">replaces a checkpoint's manifest by the merged one (given its id): step 2</param>
    /// <returns>Whether anything was merged.</returns>
    /// <exception cref="CheckpointMergeException">An image is missing, corrupt or does not fit its base.</exception>
    /// <exception cref="CheckpointNotFoundException">The checkpoint does not exist (any more).</exception>
    /// <exception cref="IOException">Writing failed (a full disk); nothing already saved was changed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; nothing already saved was changed.</exception>
    /// <exception cref="CheckpointPinnedException">A checkpoint it would rewrite is pinned; nothing already saved was changed.</exception>
    public bool Merge(
        string group, string id, string reason, Action? pace, Action<string, CheckpointManifest> replaceManifest, CancellationToken cancellationToken) =>
        Merge(group, id, reason, pace, replaceManifest, cancellationToken, depth: 0);

    private bool Merge(
        string group, string id, string reason, Action? pace, Action<string, CheckpointManifest> replaceManifest, CancellationToken cancellationToken,
        int depth)
    {
        CheckpointManifest manifest = Load(group, id);
        if (!manifest.HasIncrementalMembers)
        {
            return false;
        }
        var dir = _store.CheckpointDir(group, id);
        var incremental = manifest.Members.Where(m => m.IsIncremental).ToList();
        var duration = Stopwatch.StartNew();
        _logger.LogInformation(
            "Merge of checkpoint {CheckpointId} of group {Group} started ({Reason}): {Members} incremental images on checkpoint {BaseId}",
            id, group, reason, incremental.Count, CheckpointId.Format(manifest.BaseSeq));

        var written = new List<string>();
        int images = 0;
        try
        {
            var replaced = new List<ManifestMember>(incremental.Count);
            var statistics = new List<MergeStatistics>(incremental.Count);
            foreach (var member in incremental)
            {
                var chain = Chain(group, id, member, pace, replaceManifest, cancellationToken, depth);
                var (metaName, pagesName) = CheckpointStore.MergedFileNames(member.Vpid);
                var output = new ImageFiles(Path.Combine(dir, metaName), Path.Combine(dir, pagesName));
                written.Add(output.Meta);
                written.Add(output.Pages);
                images += chain.Count;
                MergeResult result;
                try
                {
                    result = ImageMerger.MergeChain(Files(group, chain[0]),
                        chain.Skip(1).Select(c => new ChainLink(Files(group, c), (uint)c.Member.BaseImageVpid)).ToList(),
                        output, pace, cancellationToken);
                }
                catch (ImageFormatException e)
                {
                    throw new CheckpointMergeException($"checkpoint {group}/{id} cannot be merged: {e.Message}", e);
                }
                statistics.Add(result.Statistics);
                // Full now: no base checkpoint, no base vpid.
                replaced.Add(ManifestMember.FromFiles(dir, metaName, pagesName, member.Vpid, member.Vppid, member.App, member.ExecCount));
            }

            // The merged files are on disk (the writer fsynced them). From the rename on, the
            // checkpoint is the merged one.
            HoldForFault(group, id, cancellationToken);
            pace?.Invoke();
            cancellationToken.ThrowIfCancellationRequested();
            var merged = manifest.AsMerged(replaced, _time.GetUtcNow().UtcDateTime);
            replaceManifest(id, merged);
            written.Clear();

            var removed = RemoveLeftovers(group, id);
            _logger.LogInformation(
                "Merge of checkpoint {CheckpointId} of group {Group} finished: {Members} images merged in {DurationMs:F1} ms from {Images} images of their chains, "
                + "{PagesFromBase} pages from the base, {PagesFromIncrement} from the increment, {HolePages} holes; {BytesBefore} bytes before, {BytesAfter} after; removed {Removed}",
                id, group, replaced.Count, duration.Elapsed.TotalMilliseconds, images,
                statistics.Sum(s => s.PagesFromBase), statistics.Sum(s => s.PagesFromIncrement), statistics.Sum(s => s.HolePages),
                manifest.Bytes, merged.Bytes, string.Join(", ", removed));
            return true;
        }
        catch (Exception e)
        {
            // The old manifest still stands: the merged files it does not name go.
            foreach (var file in written)
            {
                TryDelete(file);
            }
            if (e is CheckpointPinnedException)
            {
                _logger.LogInformation("Merge of checkpoint {CheckpointId} of group {Group} stopped: {Reason}; it stays incremental", id, group, e.Message);
            }
            else if (e is not OperationCanceledException)
            {
                _logger.LogError(
                    "Merge of checkpoint {CheckpointId} of group {Group} failed: {Error}; the checkpoint stays incremental",
                    id, group, e.Message);
            }
            else
            {
                _logger.LogInformation("Merge of checkpoint {CheckpointId} of group {Group} stopped before it finished; it stays incremental", id, group);
            }
            throw;
        }
    }

    /// <summary>
    /// The images an incremental member is made of, oldest first, from a full one
    /// (<see cref="CheckpointChains.ImageChain"/>); a chain too long for one pass is first cut by
    /// merging its steps (<see cref="CheckpointChains.MergeSteps"/>).
    /// </summary>
    private IReadOnlyList<CheckpointChains.ChainImage> Chain(
        string group, string id, ManifestMember member, Action? pace, Action<string, CheckpointManifest> replaceManifest,
        CancellationToken cancellationToken, int depth)
    {
        var seq = CheckpointId.Parse(id);
        while (true)
        {
            var chain = CheckpointChains.ImageChain(_store, group, seq, member);
            if (chain[0].Member.IsIncremental)
            {
                throw Broken(group, CheckpointId.Format(chain[0].Seq), chain[0].Member);
            }
            if (CheckpointChains.MergeSteps(chain).FirstOrDefault() is not { } step)
            {
                return chain;
            }
            if (depth > 100)
            {
                throw new CheckpointMergeException($"checkpoint {group}/{id} cannot be merged: its chain of bases is too long");
            }
            Merge(group, CheckpointId.Format(step.Seq), $"checkpoint {id} applies to it through a chain of {chain.Count} images",
                pace, replaceManifest, cancellationToken, depth + 1);
        }
    }

    private ImageFiles Files(string group, CheckpointChains.ChainImage image) =>
        ImageFiles.Of(_store.CheckpointDir(group, CheckpointId.Format(image.Seq)), image.Member);

    /// <summary>Why the chain ends in an incremental image: the base it applies to is gone, unreadable, or lacks its process.</summary>
    private CheckpointMergeException Broken(string group, string id, ManifestMember member)
    {
        var baseId = CheckpointId.Format(member.BaseSeq);
        var baseVpid = member.BaseImageVpid;
        if (LoadBase(group, id, baseId, member).Members.Any(m => m.Vpid == baseVpid))
        {
            return new CheckpointMergeException($"checkpoint {group}/{id} cannot be merged: its chain of bases does not end in a full image");
        }
        return new CheckpointMergeException(
            $"checkpoint {group}/{id} cannot be merged: its image of vpid {member.Vpid} applies to "
            + (baseVpid == member.Vpid ? $"checkpoint {baseId}" : $"the image of vpid {baseVpid} in checkpoint {baseId}")
            + $", which has no process {baseVpid}");
    }

    private CheckpointManifest LoadBase(string group, string id, string baseId, ManifestMember member)
    {
        try
        {
            return _store.LoadManifest(group, baseId);
        }
        catch (CheckpointNotFoundException e)
        {
            throw new CheckpointMergeException(
                $"checkpoint {group}/{id} cannot be merged: its image of vpid {member.Vpid} applies to checkpoint {baseId}, which does not exist any more", e);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointMergeException($"checkpoint {group}/{id} cannot be merged: its base {e.Message}", e);
        }
    }

    private CheckpointManifest Load(string group, string id)
    {
        try
        {
            return _store.LoadManifest(group, id);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointMergeException(e.Message, e);
        }
    }

    /// <summary>The incremental files; a failure here leaves them to the next start's clean-up, the merge stands.</summary>
    private IReadOnlyList<string> RemoveLeftovers(string group, string id)
    {
        try
        {
            return _store.RemoveUnreferencedFiles(group, id);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(
                "Checkpoint {CheckpointId} of group {Group} is merged, but its incremental files could not be removed: {Error}; they are removed at the next start",
                id, group, e.Message);
            return [];
        }
    }

    private void HoldForFault(string group, string id, CancellationToken cancellationToken)
    {
        if (_faults.HoldBeforeManifest <= TimeSpan.Zero)
        {
            return;
        }
        _logger.LogWarning(
            "Fault slow-merge: merge of checkpoint {CheckpointId} of group {Group} holds for {Seconds} s with its merged files written and the old manifest in place",
            id, group, _faults.HoldBeforeManifest.TotalSeconds);
        cancellationToken.WaitHandle.WaitOne(_faults.HoldBeforeManifest);
        cancellationToken.ThrowIfCancellationRequested();
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Could not remove {File} after a failed merge: {Error}; it is removed at the next start", path, e.Message);
        }
    }
}
