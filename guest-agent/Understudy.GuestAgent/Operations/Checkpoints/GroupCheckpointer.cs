using System.Collections.Concurrent;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Every checkpoint the agent takes, by hand (hactl checkpoint) or on schedule, goes through
/// here: the coordinator takes it, the outcome becomes a checkpoint.taken or checkpoint.failed
/// event, and the group's retention is applied (<see cref="IRetentionPolicy"/>). One checkpoint of
/// a group runs at a time; another one asked for meanwhile waits for it, then is taken: a
/// checkpoint asked for by hand while a scheduled one runs (ten a second under an HA policy) is
/// taken after it rather than refused.
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
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _oneAtATime = new(StringComparer.Ordinal);

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
            outcome = await InTurnAsync(
                group, () => _coordinator.RunAsync(group, full, freeze, progress, cancellationToken, incrementalWherePossible), cancellationToken).ConfigureAwait(false);
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
            frozen = await InTurnAsync(group, () => _coordinator.RunAndHoldAsync(group, freeze, progress, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            _events.Publish(new CheckpointFailed(group, e is AgentException ? e.Message : "cancelled", freeze.FrozenMs, Migration));
            throw;
        }
        Taken(frozen.Checkpoint, Migration);
        return frozen;
    }

    /// <summary>Runs <paramref name="checkpoint"/> once no other checkpoint of the group runs.</summary>
    private async Task<T> InTurnAsync<T>(string group, Func<Task<T>> checkpoint, CancellationToken cancellationToken)
    {
        var turn = _oneAtATime.GetOrAdd(group, _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await checkpoint().ConfigureAwait(false);
        }
        finally
        {
            turn.Release();
        }
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
