using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Merging;

/// <summary>
/// Merges committed incremental checkpoints into full ones in the background (DESIGN.md,
/// "Incremental checkpoints"), so that a restore reads one image per process and chains stay
/// short. One merge at a time, on its own low-priority thread, oldest request first; a group's
/// merge is held while that group is being checkpointed (<see cref="MergePauses"/>). At start,
/// it finishes what a killed agent left: leftover files of half-done merges are removed and
/// checkpoints still incremental are queued.
/// </summary>
internal sealed class BackgroundMerges : IHostedService, IDisposable
{
    private readonly BlockingCollection<(string Group, string Id, string Reason)> _queue = new();
    private readonly ConcurrentDictionary<(string Group, string Id), bool> _queued = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CheckpointMerger _merger;
    private readonly CheckpointStore _store;
    private readonly GroupStoreLocks _locks;
    private readonly MergePauses _pauses;
    private readonly ILogger<BackgroundMerges> _logger;
    private readonly bool _enabled;
    private Thread? _worker;
    private volatile bool _busy;

    public BackgroundMerges(
        CheckpointMerger merger, CheckpointStore store, GroupStoreLocks locks, MergePauses pauses,
        IOptions<AgentOptions> options, ILogger<BackgroundMerges> logger)
    {
        _enabled = options.Value.BackgroundMerges;
        _merger = merger;
        _store = store;
        _locks = locks;
        _pauses = pauses;
        _logger = logger;
    }

    /// <summary>Whether nothing is queued or being merged (tests wait for it).</summary>
    public bool IsIdle => !_busy && _queue.Count == 0;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Recover();
        _worker = new Thread(Work) { IsBackground = true, Name = "understudy-merge" };
        _worker.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _queue.CompleteAdding();
        if (_worker is { } worker)
        {
            // A merge stops at its next chunk; what it wrote is removed, the checkpoint stays incremental.
            await Task.Run(() => worker.Join(), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _queue.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Queues a merge of checkpoint <paramref name="id"/>; a checkpoint already queued is not queued twice.</summary>
    public void Enqueue(string group, string id, string reason)
    {
        if (!_enabled || _stopping.IsCancellationRequested || !_queued.TryAdd((group, id), true))
        {
            return;
        }
        try
        {
            _queue.Add((group, id, reason));
        }
        catch (InvalidOperationException)
        {
            // Stopping: the next start queues it again.
            _queued.TryRemove((group, id), out _);
        }
    }

    /// <summary>Holds the group's merges until the result is disposed (a checkpoint of the group is running).</summary>
    public IDisposable PauseGroup(string group) => _pauses.Pause(group);

    private void Work()
    {
        var priority = LowPriority.ApplyToCurrentThread();
        _logger.LogInformation("Background merges run one at a time, {Priority}", priority);
        try
        {
            foreach (var (group, id, reason) in _queue.GetConsumingEnumerable(_stopping.Token))
            {
                _busy = true;
                try
                {
                    Run(group, id, reason);
                }
                finally
                {
                    _queued.TryRemove((group, id), out _);
                    _busy = false;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void Run(string group, string id, string reason)
    {
        var token = _stopping.Token;
        var groupLock = _locks.For(group);
        groupLock.Wait(token);
        try
        {
            _pauses.WaitWhilePaused(group, token);
            _merger.Merge(group, id, reason, () => _pauses.WaitWhilePaused(group, token), token);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw;
        }
        catch (CheckpointNotFoundException)
        {
            _logger.LogInformation("Checkpoint {CheckpointId} of group {Group} is gone; nothing to merge", id, group);
        }
        catch (Exception e) when (e is CheckpointMergeException or IOException or UnauthorizedAccessException)
        {
            // The merger logged it; the checkpoint stays incremental and a restore merges it then.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Merge of checkpoint {CheckpointId} of group {Group} failed unexpectedly: {Error}", id, group, e.Message);
        }
        finally
        {
            groupLock.Release();
        }
    }

    /// <summary>What a killed agent left: leftovers of half-done merges go, unmerged checkpoints are queued.</summary>
    private void Recover()
    {
        var groupsDir = Path.Combine(_store.StateDir, "groups");
        if (!Directory.Exists(groupsDir))
        {
            return;
        }
        foreach (var group in Directory.EnumerateDirectories(groupsDir).Select(Path.GetFileName).OfType<string>()
                     .Where(g => GroupName.Problem(g) is null).Order(StringComparer.Ordinal))
        {
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
                        Enqueue(group, checkpoint.Id, "left unmerged when the agent last stopped");
                    }
                }
                catch (Exception e) when (e is ImageFormatException or CheckpointNotFoundException or IOException or UnauthorizedAccessException)
                {
                    _logger.LogWarning("Checkpoint {CheckpointId} of group {Group} could not be checked for unfinished merges: {Error}", checkpoint.Id, group, e.Message);
                }
            }
        }
    }
}
