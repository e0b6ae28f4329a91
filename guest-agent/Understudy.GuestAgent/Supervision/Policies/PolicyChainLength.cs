using Understudy.GuestAgent.Operations.Checkpoints;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// A policy's checkpoints.fullEvery N above 1 makes every Nth scheduled checkpoint full: the N - 1
/// between stay incremental, even beyond the agent's --full-every and --chain-limit.
/// </summary>
internal sealed class PolicyChainLength(PolicyCatalog policies) : IChainLengthPolicy
{
    public int? IncrementalsAllowed(string group) =>
        policies.Find(group)?.Policy.Checkpoints.FullEvery is > 1 and var fullEvery ? fullEvery - 1 : null;
}
