using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Merging;

/// <summary>
/// Merges committed incremental checkpoints into full ones in the background (docs/image-format.md,
/// "Merging a checkpoint"), so that a restore reads one image per process and chains stay short.
/// One merge at a time, on its own low-priority thread. The groups take turns in the order they
/// asked, and a group's newest waiting checkpoint goes first: a merge reads the whole chain in one
/// pass and writes the whole memory, so while checkpoints come faster than merges, the newest is
/// merged each time and the older ones wait until retention deletes them (or are merged once the
/// group's checkpoints slow down). What to merge and when it may not (its group is being
/// checkpointed, it is pinned) is the store owner's (<see cref="CheckpointKeeper"/>), which asks
/// for merges through <see cref="CheckpointKeeper.MergeWanted"/>. At start, the store owner cleans
/// up what a killed agent left, and the checkpoints still incremental are queued.
/// </summary>
internal sealed class BackgroundMerges : IHostedService, IDisposable
{
    /// <summary>How many merges of one group wait at most.</summary>
    public const int MaxWaitingPerGroup = 32;

    private readonly object _sync = new();
    // In the order asked for; a checkpoint is in it once.
    private readonly List<MergeRequest> _waiting = [];
    // One count per waiting request.
    private readonly SemaphoreSlim _available = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly CheckpointKeeper _keeper;
    private readonly ILogger<BackgroundMerges> _logger;
    private readonly bool _enabled;
    private Thread? _worker;

    public BackgroundMerges(CheckpointKeeper keeper, IOptions<AgentOptions> options, ILogger<BackgroundMerges> logger)
    {
        _enabled = options.Value.BackgroundMerges;
        _keeper = keeper;
        _logger = logger;
        _keeper.MergeWanted += Enqueue;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var unmerged in _keeper.CleanUpAfterCrash())
        {
            Enqueue(unmerged);
        }
        _worker = new Thread(Work) { IsBackground = true, Name = "understudy-merge" };
        _worker.Start();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _keeper.MergeWanted -= Enqueue;
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_worker is { } worker)
        {
            // A merge stops at its next chunk; what it wrote is removed, the checkpoint stays incremental.
            await Task.Run(() => worker.Join(), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _keeper.MergeWanted -= Enqueue;
        _available.Dispose();
        _stopping.Dispose();
    }

    /// <summary>
    /// Queues a merge; a checkpoint already waiting is not queued twice. Past
    /// <see cref="MaxWaitingPerGroup"/> of a group, its oldest is forgotten: checkpoints that keep
    /// coming leave it waiting for good, and retention deletes it in the meantime (kept, it stays
    /// incremental and restores from its chain; the next start queues it again).
    /// </summary>
    private void Enqueue(MergeRequest request)
    {
        if (!_enabled || _stopping.IsCancellationRequested)
        {
            return;
        }
        lock (_sync)
        {
            if (_waiting.Any(w => w.Group == request.Group && w.Id == request.Id))
            {
                return;
            }
            _waiting.Add(request);
            if (_waiting.Count(w => w.Group == request.Group) <= MaxWaitingPerGroup)
            {
                _available.Release();
                return;
            }
            var oldest = _waiting.Where(w => w.Group == request.Group).MinBy(w => CheckpointId.Parse(w.Id))!;
            _waiting.Remove(oldest);
            _logger.LogDebug("Merge of checkpoint {CheckpointId} of group {Group} forgotten: {Count} newer ones wait", oldest.Id, oldest.Group, MaxWaitingPerGroup);
        }
    }

    /// <summary>The group that has waited longest.</summary>
    private string NextGroup()
    {
        lock (_sync)
        {
            return _waiting[0].Group;
        }
    }

    /// <summary>The group's newest waiting checkpoint; no longer waiting once taken.</summary>
    private MergeRequest Take(string group)
    {
        lock (_sync)
        {
            var next = _waiting.Where(w => w.Group == group).MaxBy(w => CheckpointId.Parse(w.Id))!;
            _waiting.Remove(next);
            return next;
        }
    }

    private void Work()
    {
        var priority = LowPriority.ApplyToCurrentThread();
        _logger.LogInformation("Background merges run one at a time, {Priority}", priority);
        try
        {
            while (true)
            {
                _available.Wait(_stopping.Token);
                // A request while it runs (a pin released that deferred it) queues it again.
                _keeper.MergeInBackground(NextGroup(), Take, _stopping.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the next start queues what is still incremental.
        }
    }
}
