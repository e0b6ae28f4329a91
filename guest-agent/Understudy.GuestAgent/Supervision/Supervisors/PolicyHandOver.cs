using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Migration;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// A migration's target takes a supervised group's policy (<see cref="IPolicyHandOver"/>): the text
/// the source applied, with <c>standby:</c> set to the source (the roles swap), checked as
/// <c>hactl group apply</c> checks a file (parsed, checked against this node, the standby a peer),
/// refused in one line. Once the group runs here, it is stored as STATE/policies/GROUP.yaml (0600,
/// written durably; a standby's copy of it here goes) and the group's supervisor takes it up.
/// </summary>
internal sealed class PolicyHandOver(
    PolicyEnvironment environment, PolicyStore store, SupervisorRegistry registry, StandbyAssignments standbys, IEventPublisher events,
    TimeProvider time, ILogger<PolicyHandOver> logger) : IPolicyHandOver
{
    public IIncomingPolicy? Accept(string group, string? policyText, string source)
    {
        var here = registry.Find(group);
        if (here is { IsStandbyCopy: false })
        {
            var comes = string.IsNullOrEmpty(policyText) ? "the group has none on node " + source : $"the policy of node {source} comes with the group";
            throw AgentException.FailedPrecondition(
                $"group {group} has a policy of its own on this node ({here.State.ToString().ToLowerInvariant()} here); " +
                $"delete it here first with 'hactl group delete {group}' ({comes})");
        }
        if (string.IsNullOrEmpty(policyText))
        {
            if (here is not null)
            {
                throw AgentException.FailedPrecondition(
                    $"group {group} comes from node {source} without a policy, but this node holds a copy of one; delete it here first with 'hactl group delete {group}'");
            }
            return null;
        }
        var name = $"{group}.yaml from node {source}";
        if (System.Text.Encoding.UTF8.GetByteCount(policyText) > ContractLimits.MaxPolicyBytes)
        {
            throw AgentException.InvalidArgument($"{name} is more than a policy may be ({ContractLimits.MaxPolicyBytes / 1024} KiB)");
        }
        ParsedPolicy parsed;
        try
        {
            parsed = PolicyStandbyKey.With(policyText, name, source);
            environment.Check(parsed);
        }
        catch (PolicyException e)
        {
            throw AgentException.InvalidArgument(
                $"{e.Message}; this node cannot supervise the group by it: fix it on node {source} with hactl group apply, then migrate again");
        }
        if (parsed.Policy.Group != group)
        {
            throw AgentException.InvalidArgument($"{name} is the policy of group {parsed.Policy.Group}, not of group {group}");
        }
        standbys.Require(source);
        return new Incoming(this, parsed, name, source);
    }

    private async Task SuperviseAsync(LifecycleScope scope, ParsedPolicy parsed, string name, string source)
    {
        var group = parsed.Policy.Group;
        try
        {
            store.Save(parsed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The group runs here already: it is supervised all the same, but would not be after a restart.
            logger.LogError(
                "Group {Group} moved here from node {Source}, but its policy could not be stored ({Error}); apply it here with hactl group apply",
                group, source, e.Message);
        }
        events.Publish(new PolicyApplied(group, name, [], Created: true));
        await registry.TakeUpAsync(scope, new AppliedPolicy(parsed, name, time.GetUtcNow().UtcDateTime), source).ConfigureAwait(false);
    }

    private sealed class Incoming(PolicyHandOver handOver, ParsedPolicy parsed, string name, string source) : IIncomingPolicy
    {
        public Task SuperviseAsync(LifecycleScope scope) => handOver.SuperviseAsync(scope, parsed, name, source);
    }
}
