using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>A group that runs again: its applications' main processes, and the checkpoint it came from (null: started fresh).</summary>
internal sealed record RecoveredGroup(IReadOnlyDictionary<string, int> MainVpids, string? CheckpointId, RestoreOutcome? Restore);

/// <summary>
/// Carries out one recovery of a whole group: a restore from a checkpoint (the existing restore
/// path, resuming the applications one by one in launch order, each once the one before is
/// ready), or a fresh restart in launch order. Either stops whatever is left of the group first.
/// </summary>
internal sealed class RecoveryRunner
{
    private readonly RestoreCoordinator _restores;
    private readonly GroupLauncher _availability;
    private readonly LaunchOrderStarter _launcher;
    private readonly RecoveryPointSelector _points;

    public RecoveryRunner(RestoreCoordinator restores, GroupLauncher availability, LaunchOrderStarter launcher, RecoveryPointSelector points)
    {
        _restores = restores;
        _availability = availability;
        _launcher = launcher;
        _points = points;
    }

    /// <summary>The policy's action for <paramref name="fault"/>: restore (fresh if there is no checkpoint to use) or restart.</summary>
    /// <param name="running">told each application's main process as soon as it runs (launched, or resumed)</param>
    public Task<RecoveredGroup> RecoverAsync(GroupPolicy policy, Fault fault, Action<string, int> running, CancellationToken cancellationToken) =>
        policy.Recovery.Action == RecoveryAction.Restore && _points.Select(policy.Group, fault) is { } checkpoint
            ? RestoreAsync(policy, checkpoint, running, cancellationToken)
            : RestartAsync(policy, running, cancellationToken);

    /// <param name="checkpointId">null or empty: the newest</param>
    /// <param name="resumed">told each application's main process just before it is resumed</param>
    public async Task<RecoveredGroup> RestoreAsync(
        GroupPolicy policy, string? checkpointId, Action<string, int> resumed, CancellationToken cancellationToken)
    {
        var order = _launcher.ResumeInLaunchOrder(policy, resumed);
        var outcome = await _restores.RestoreAsync(policy.Group, checkpointId, order, cancellationToken).ConfigureAwait(false);
        return new RecoveredGroup(LaunchOrderStarter.MainProcesses(policy, outcome.Members), outcome.Id, outcome);
    }

    public async Task<RecoveredGroup> RestartAsync(GroupPolicy policy, Action<string, int> launched, CancellationToken cancellationToken)
    {
        await _availability.StopAsync(policy.Group, cancellationToken).ConfigureAwait(false);
        var vpids = await _launcher.LaunchAllAsync(policy, launched, cancellationToken).ConfigureAwait(false);
        return new RecoveredGroup(vpids, null, null);
    }
}
