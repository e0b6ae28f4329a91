namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// How many incremental checkpoints of a group may follow a full one, where the group's policy
/// sets its own cadence of full checkpoints (the supervision layer implements it): a group
/// checkpointed ten times a second for its standby should not send a whole image every ninth,
/// nor whenever its increments add up to half of one.
/// </summary>
internal interface IChainLengthPolicy
{
    /// <returns>the number, or null for the agent's --full-every</returns>
    int? IncrementalsAllowed(string group);
}
