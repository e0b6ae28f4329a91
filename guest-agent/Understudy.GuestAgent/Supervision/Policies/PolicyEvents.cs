using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Supervision.Policies;

// Policies applied, changed and deleted (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record PolicyApplied(string Group, string Source, IReadOnlyList<PolicyChange> Changes, bool Created) : AgentEvent(Group)
{
    public override string Type => Created ? "policy.applied" : "policy.changed";
    public override string Message => Created
        ? $"policy applied from {Source}"
        : $"policy changed from {Source}: {string.Join("; ", Changes.Select(c => c.Live ? c.Text : c.Text + " (from the next start)"))}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("source", Source), ("changes", Created ? null : string.Join("; ", Changes.Select(c => c.Text)))];
}

/// <summary>policy.deleted: hactl group delete took a stopped group's policy away.</summary>
/// <param name="Source">the file the policy had been applied from</param>
internal sealed record PolicyDeleted(string Group, string Source) : AgentEvent(Group)
{
    public override string Type => "policy.deleted";
    public override string Message => Source.Length == 0 ? "policy deleted" : $"policy deleted (it was applied from {Source})";
    public override IEnumerable<(string, object?)> Fields() => [("source", Source.Length == 0 ? null : Source)];
}
