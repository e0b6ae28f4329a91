using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Scheduling;

/// <summary>
/// Takes a running group's periodic checkpoints (checkpoints.interval), every fullEvery-th one
/// full. Each is due one interval after the last one began, so that the time a checkpoint
/// takes is not added to the interval; one that took longer than the interval is followed at
/// once (the group's checkpoints run one at a time). One that failed is followed one interval
/// after it ended, not at once. A new interval takes effect at once: the next checkpoint is due
/// one new interval after the last one. No checkpoint is taken while a health check is failing,
/// so that a hung state is not saved as the newest checkpoint.
/// </summary>
internal sealed class CheckpointScheduler
{
    private readonly GroupLifecycle _lifecycle;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _sync = new();
    // Held while a scheduled checkpoint is taken, and by a pause (a migration's rounds).
    private readonly SemaphoreSlim _taking = new(1, 1);
    private TaskCompletionSource _rescheduled = NewSignal();
    private CancellationTokenSource? _stop;
    private Task _loop = Task.CompletedTask;

    public CheckpointScheduler(GroupLifecycle lifecycle, TimeProvider time, ILogger logger)
    {
        _lifecycle = lifecycle;
        _time = time;
        _logger = logger;
    }

    /// <summary>When the next checkpoint is due; null when none is scheduled.</summary>
    public DateTimeOffset? NextDueUtc { get; private set; }

    /// <param name="schedule">read afresh before every wait: the policy may change</param>
    /// <param name="healthy">whether every health check passes now</param>
    /// <param name="lastTaken">when the last checkpoint was taken, to go on from (a group taken up after an agent
    /// restart); null: the schedule starts now</param>
    public void Start(Func<CheckpointSchedule> schedule, Func<bool> healthy, DateTimeOffset? lastTaken = null)
    {
        lock (_sync)
        {
            _stop = new CancellationTokenSource();
            var stop = _stop.Token;
            _loop = Task.Run(() => RunAsync(schedule, healthy, lastTaken, stop), CancellationToken.None);
        }
    }

    public async Task StopAsync()
    {
        Task loop;
        lock (_sync)
        {
            _stop?.Cancel();
            _stop = null;
            loop = _loop;
        }
        await loop.ConfigureAwait(false);
        NextDueUtc = null;
    }

    /// <summary>
    /// Holds scheduled checkpoints back until the returned lease is disposed, once the one in flight
    /// (if any) is done: a migration's rounds must not collide with one.
    /// </summary>
    public async Task<IDisposable> PauseAsync(CancellationToken cancellationToken)
    {
        await _taking.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new GateLease(() => _taking.Release());
    }

    /// <summary>The schedule changed: work out the next due time again.</summary>
    public void Reschedule()
    {
        lock (_sync)
        {
            var signal = _rescheduled;
            _rescheduled = NewSignal();
            signal.TrySetResult();
        }
    }

    private async Task RunAsync(Func<CheckpointSchedule> schedule, Func<bool> healthy, DateTimeOffset? lastTaken, CancellationToken stop)
    {
        var now = _time.GetUtcNow();
        var last = lastTaken is { } before && before < now ? before : now;
        var taken = 0;
        try
        {
            while (true)
            {
                Task rescheduled;
                lock (_sync)
                {
                    rescheduled = _rescheduled.Task;
                }
                var current = schedule();
                if (current.Interval is not { } interval)
                {
                    NextDueUtc = null;
                    await rescheduled.WaitAsync(stop).ConfigureAwait(false);
                    continue;
                }
                var due = last + interval;
                NextDueUtc = due;
                var wait = due - _time.GetUtcNow();
                if (wait > TimeSpan.Zero)
                {
                    var timer = Task.Delay(wait, _time, stop);
                    if (await Task.WhenAny(timer, rescheduled).ConfigureAwait(false) == rescheduled)
                    {
                        continue;
                    }
                    await timer.ConfigureAwait(false);
                }

                last = _time.GetUtcNow();
                if (!healthy())
                {
                    _logger.LogInformation("Scheduled checkpoint of group {Group} skipped: a health check is failing", _lifecycle.Name);
                    continue;
                }
                var full = taken % current.FullEvery == 0;
                await _taking.WaitAsync(stop).ConfigureAwait(false);
                try
                {
                    // last stays when this one began: the next is due an interval after that.
                    await _lifecycle.CheckpointAsync(full, GroupCheckpointer.Scheduled, progress: null, stop).ConfigureAwait(false);
                    taken++;
                }
                catch (AgentException)
                {
                    // Already an event (checkpoint.failed); the next one is tried an interval
                    // after this one ended, so that a failing group is not retried back to back.
                    last = _time.GetUtcNow();
                }
                finally
                {
                    _taking.Release();
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
