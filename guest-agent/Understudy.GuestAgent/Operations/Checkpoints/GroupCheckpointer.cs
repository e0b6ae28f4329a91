using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Every checkpoint the agent takes, by hand (hactl checkpoint) or on schedule, goes through
/// here: the coordinator takes it, the outcome becomes a checkpoint.taken or checkpoint.failed
/// event, and the group's retention is applied.
/// </summary>
internal sealed class GroupCheckpointer
{
    public const string Manual = "manual";
    public const string Scheduled = "scheduled";

    private readonly CheckpointCoordinator _coordinator;
    private readonly CheckpointRetention _retention;
    private readonly PolicyCatalog _policies;
    private readonly IEventPublisher _events;

    public GroupCheckpointer(CheckpointCoordinator coordinator, CheckpointRetention retention, PolicyCatalog policies, IEventPublisher events)
    {
        _coordinator = coordinator;
        _retention = retention;
        _policies = policies;
        _events = events;
    }

    /// <param name="trigger">manual or scheduled, for the event</param>
    public async Task<CheckpointOutcome> RunAsync(
        string group, bool full, string trigger, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        CheckpointOutcome outcome;
        try
        {
            outcome = await _coordinator.RunAsync(group, full, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException || (e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            var reason = e is AgentException ? e.Message : "cancelled";
            _events.Publish(new CheckpointFailed(group, reason, trigger));
            throw;
        }
        _events.Publish(new CheckpointTaken(group, outcome.Id, outcome.Kind, outcome.Bytes, outcome.Members, outcome.FrozenMs, trigger));
        if (_policies.Find(group) is { } applied)
        {
            _retention.Apply(group, applied.Policy.Checkpoints.Retention);
        }
        return outcome;
    }
}
