using Understudy.GuestAgent.Operations.Lifecycle;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// The target's side of a supervised group's move (the supervision layer implements it): the
/// policy that comes with the group is checked as a policy file would be, before anything is
/// restored, and once the group runs here it is stored and the group supervised by it.
/// </summary>
internal interface IPolicyHandOver
{
    /// <summary>
    /// Checks what a migration from node <paramref name="source"/> brings of the group's policy
    /// against this node; changes nothing.
    /// </summary>
    /// <param name="policyText">the group's policy on the source; null or empty: it has none</param>
    /// <returns>what puts the policy in force once the group runs here; null when the group has no policy on either node</returns>
    /// <exception cref="Foundation.Errors.AgentException">
    /// InvalidArgument: the policy cannot be used here; FailedPrecondition: this node supervises the group itself, or holds another policy of it.
    /// </exception>
    IIncomingPolicy? Accept(string group, string? policyText, string source);
}

/// <summary>A policy that came with a migrating group, checked, not yet in force.</summary>
internal interface IIncomingPolicy
{
    /// <summary>
    /// The group was restored here and runs (the lifecycle lock held): the policy is stored in
    /// this node's state directory and the group's supervisor here takes it up where it is.
    /// </summary>
    Task SuperviseAsync(LifecycleScope scope);
}
