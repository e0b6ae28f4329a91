using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Merging;

/// <summary>
/// Merges committed incremental checkpoints into full ones in the background (docs/image-format.md,
/// "Merging a checkpoint"), so that a restore reads one image per process and chains stay short.
/// One merge at a time, on its own low-priority thread, oldest request first; what to merge and
/// when it may not (its group is being checkpointed, a checkpoint it would rewrite is pinned) is the
/// store owner's (<see cref="CheckpointKeeper"/>), which asks for merges through
/// <see cref="CheckpointKeeper.MergeWanted"/>. At start, the store owner cleans up what a killed
/// agent left, and the checkpoints still incremental are queued.
/// </summary>
internal sealed class BackgroundMerges : IHostedService, IDisposable
{
    private readonly BlockingCollection<MergeRequest> _queue = new();
    private readonly ConcurrentDictionary<(string Group, string Id), bool> _queued = new();
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
        _queue.CompleteAdding();
        if (_worker is { } worker)
        {
            // A merge stops at its next chunk; what it wrote is removed, the checkpoint stays incremental.
            await Task.Run(() => worker.Join(), cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _keeper.MergeWanted -= Enqueue;
        _queue.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Queues a merge; a checkpoint already waiting in the queue is not queued twice.</summary>
    private void Enqueue(MergeRequest request)
    {
        if (!_enabled || _stopping.IsCancellationRequested || !_queued.TryAdd((request.Group, request.Id), true))
        {
            return;
        }
        try
        {
            _queue.Add(request);
        }
        catch (InvalidOperationException)
        {
            // Stopping: the next start queues it again.
            _queued.TryRemove((request.Group, request.Id), out _);
        }
    }

    private void Work()
    {
        var priority = LowPriority.ApplyToCurrentThread();
        _logger.LogInformation("Background merges run one at a time, {Priority}", priority);
        try
        {
            foreach (var request in _queue.GetConsumingEnumerable(_stopping.Token))
            {
                // No longer queued once taken: a request while it runs (a pin released that
                // deferred it) must queue it again.
                _queued.TryRemove((request.Group, request.Id), out _);
                _keeper.MergeInBackground(request, _stopping.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
