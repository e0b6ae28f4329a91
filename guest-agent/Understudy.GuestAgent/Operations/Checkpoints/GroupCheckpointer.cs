using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Every checkpoint the agent takes, by hand (hactl checkpoint) or on schedule, goes through
/// here: the coordinator takes it, the outcome becomes a checkpoint.taken or checkpoint.failed
/// event, and the group's retention is applied (<see cref="IRetentionPolicy"/>).
/// </summary>
internal sealed class GroupCheckpointer
{
    public const string Manual = "manual";
    public const string Scheduled = "scheduled";

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
    public async Task<CheckpointOutcome> RunAsync(
        string group, bool full, string trigger, IProgress<CheckpointProgressUpdate>? progress, Func<string?> abortedBecause,
        CancellationToken cancellationToken)
    {
        CheckpointOutcome outcome;
        var freeze = new FreezeMeter();
        try
        {
            outcome = await _coordinator.RunAsync(group, full, freeze, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            var reason = e is AgentException ? e.Message
                : abortedBecause() is { } why ? $"aborted (ABORT sent, the group runs again): {why}"
                : "cancelled";
            _events.Publish(new CheckpointFailed(group, reason, freeze.FrozenMs, trigger));
            throw;
        }
        _events.Publish(new CheckpointTaken(group, outcome.Id, outcome.Kind, outcome.Bytes, outcome.Members, outcome.FrozenMs, trigger));
        if (_retention.RetentionOf(group) is { } keep)
        {
            _keeper.ApplyRetention(group, keep);
        }
        return outcome;
    }
}
