using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Decides by the group's policy alone (docs/policy.md, "Recovery"): recovery.action stop gives
/// up; more than recovery.maxAttempts recoveries within recovery.window is a crash loop and gives
/// up; otherwise restore from the newest checkpoint that fits the fault
/// (<see cref="RecoveryPointSelector"/>), or restart fresh when the action is restart or there is none.
/// </summary>
internal sealed class LocalRecoveryDecider : IRecoveryDecider
{
    private readonly RecoveryPointSelector _points;
    private readonly TimeProvider _time;

    public LocalRecoveryDecider(RecoveryPointSelector points, TimeProvider time)
    {
        _points = points;
        _time = time;
    }

    public Task<RecoveryDecision> DecideAsync(RecoveryRequest request, CancellationToken cancellationToken) =>
        Task.FromResult(Decide(request));

    private RecoveryDecision Decide(RecoveryRequest request)
    {
        var (policy, fault, lastFailure, attempts) = request;
        var recovery = policy.Recovery;
        if (recovery.Action == RecoveryAction.Stop)
        {
            return new RecoveryDecision.GiveUp($"the recovery action is stop; the fault was: {fault.Reason}");
        }
        var attempt = attempts.Record(_time.GetUtcNow(), recovery.Window);
        if (attempt > recovery.MaxAttempts)
        {
            return new RecoveryDecision.GiveUp(
                $"{attempt} failures within {DurationFormat.Format(recovery.Window)}, more than recovery.maxAttempts {recovery.MaxAttempts} " +
                $"(crash loop); the last one: {lastFailure}");
        }
        return recovery.Action == RecoveryAction.Restore && _points.Select(policy.Group, fault) is { } checkpoint
            ? new RecoveryDecision.RestoreCheckpoint(attempt, checkpoint)
            : new RecoveryDecision.RestartFresh(attempt);
    }
}
