using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Decides what a fault of a supervised group leads to; the group's supervisor asks, then carries
/// the decision out. On one node <see cref="LocalRecoveryDecider"/> decides by the policy alone;
/// with an HA pair the appliance may have the last word (restore here, or fail over to the standby).
/// </summary>
internal interface IRecoveryDecider
{
    Task<RecoveryDecision> DecideAsync(RecoveryRequest request, CancellationToken cancellationToken);
}

/// <summary>A fault to recover from, as the supervisor sees it.</summary>
/// <param name="Policy">the group's policy in force</param>
/// <param name="Fault">the fault that started the recovery</param>
/// <param name="LastFailure">the fault, or why the last attempt of this recovery failed</param>
/// <param name="Attempts">the group's recent recoveries; a decision to recover counts one more</param>
internal sealed record RecoveryRequest(GroupPolicy Policy, Fault Fault, string LastFailure, RecoveryWindow Attempts);

/// <summary>What a recovery does.</summary>
internal abstract record RecoveryDecision
{
    /// <summary>Restore the whole group here from a checkpoint, resuming it in launch order.</summary>
    /// <param name="Attempt">which recovery this is within the policy's window</param>
    internal sealed record RestoreCheckpoint(int Attempt, string CheckpointId) : RecoveryDecision;

    /// <summary>Stop what is left of the group here and launch it fresh, in launch order.</summary>
    internal sealed record RestartFresh(int Attempt) : RecoveryDecision;

    /// <summary>Stop the group here and mark it failed.</summary>
    internal sealed record GiveUp(string Reason) : RecoveryDecision;

    /// <summary>
    /// Stop the group here: the standby takes it over. Only an appliance decides this; this agent
    /// stops the group and marks it failed with the reason.
    /// </summary>
    internal sealed record FailOver(string Reason) : RecoveryDecision;
}
