using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Every checkpoint the agent takes, by hand (hactl checkpoint) or on schedule, goes through
/// here: the coordinator takes it, the outcome becomes a checkpoint.taken or checkpoint.failed
/// event, and the group's retention is applied (<see cref="IRetentionPolicy"/>). The group's
/// lifecycle runs them one at a time.
/// </summary>
internal sealed class GroupCheckpointer
{
    public const string Manual = "manual";
    public const string Scheduled = "scheduled";
    public const string Migration = "migration";

    private readonly CheckpointCoordinator _coordinator;
    private readonly CheckpointKeeper _keeper;
    private readonly IRetentionPolicy _retention;
    private readonly IEventPublisher _events;

    public GroupCheckpointer(CheckpointCoordinator coordinator, CheckpointKeeper keeper, IRetentionPolicy retention, IEventPublisher events)
    {
        _coordinator = coordinator;
        _keeper = keeper;
        _retention = retention;
        _events = events;
    }

    /// <param name="trigger">manual or scheduled, for the event</param>
    /// <param name="abortedBecause">once <paramref name="cancellationToken"/> is cancelled: why, if it was aborted on purpose</param>
    /// <param name="incrementalWherePossible">the periodic full checkpoint waits: a migration's rounds, whose target holds the chain</param>
    public async Task<CheckpointOutcome> RunAsync(
        string group, bool full, string trigger, IProgress<CheckpointProgressUpdate>? progress, Func<string?> abortedBecause,
        CancellationToken cancellationToken, bool incrementalWherePossible = false)
    {
        CheckpointOutcome outcome;
        var freeze = new FreezeMeter();
        try
        {
            outcome = await _coordinator.RunAsync(group, full, freeze, progress, cancellationToken, incrementalWherePossible).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            var reason = e is AgentException ? e.Message
                : abortedBecause() is { } why ? $"aborted (ABORT sent, the group runs again): {why}"
                : "cancelled";
            _events.Publish(new CheckpointFailed(group, reason, freeze.FrozenMs, trigger));
            throw;
        }
        Taken(outcome, trigger);
        return outcome;
    }

    /// <summary>
    /// A checkpoint that leaves the group frozen (<see cref="CheckpointCoordinator.RunAndHoldAsync"/>),
    /// for a migration's last round; its event's frozenMs is the capture's, the group stays frozen after.
    /// </summary>
    public async Task<FrozenGroup> RunAndHoldAsync(string group, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        var freeze = new FreezeMeter();
        FrozenGroup frozen;
        try
        {
            frozen = await _coordinator.RunAndHoldAsync(group, freeze, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            _events.Publish(new CheckpointFailed(group, e is AgentException ? e.Message : "cancelled", freeze.FrozenMs, Migration));
            throw;
        }
        Taken(frozen.Checkpoint, Migration);
        return frozen;
    }

    private void Taken(CheckpointOutcome outcome, string trigger)
    {
        _events.Publish(new CheckpointTaken(outcome.Group, outcome.Id, outcome.Kind, outcome.Bytes, outcome.Members, outcome.FrozenMs, trigger));
        if (_retention.RetentionOf(outcome.Group) is { } keep)
        {
            _keeper.ApplyRetention(outcome.Group, keep);
        }
    }
}
