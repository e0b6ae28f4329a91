using System.Collections.Concurrent;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>The policy in force for a group, and where it came from.</summary>
internal sealed record AppliedPolicy(ParsedPolicy Parsed, string Source, DateTime AppliedUtc)
{
    public GroupPolicy Policy => Parsed.Policy;
}

/// <summary>The policies in force on this node, by group (those applied or stored).</summary>
internal sealed class PolicyCatalog
{
    private readonly ConcurrentDictionary<string, AppliedPolicy> _policies = new(StringComparer.Ordinal);

    public AppliedPolicy? Find(string group) => _policies.GetValueOrDefault(group);

    /// <returns>the policy it replaced, if any</returns>
    public AppliedPolicy? Set(AppliedPolicy applied)
    {
        AppliedPolicy? previous = null;
        _policies.AddOrUpdate(applied.Policy.Group, applied, (_, old) =>
        {
            previous = old;
            return applied;
        });
        return previous;
    }

    public void Remove(string group) => _policies.TryRemove(group, out _);

    public IReadOnlyList<AppliedPolicy> All() => _policies.Values.OrderBy(p => p.Policy.Group, StringComparer.Ordinal).ToList();
}
