namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// How many incremental checkpoints of a group may follow a full one, where the group's policy
/// says more than the agent's --full-every (the supervision layer implements it): a group
/// checkpointed ten times a second for its standby should not send a whole image every ninth.
/// </summary>
internal interface IChainLengthPolicy
{
    /// <returns>the number, or null for the agent's --full-every</returns>
    int? IncrementalsAllowed(string group);
}
