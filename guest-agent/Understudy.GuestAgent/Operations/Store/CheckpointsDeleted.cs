using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Operations.Store;

// Retention deleted checkpoints (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record CheckpointsDeleted(string Group, IReadOnlyList<string> Ids, int Retention) : AgentEvent(Group)
{
    public override string Type => "checkpoint.deleted";
    public override string Message => $"deleted checkpoint{(Ids.Count == 1 ? "" : "s")} {string.Join(", ", Ids)} (keeping {Retention})";
    public override IEnumerable<(string, object?)> Fields() => [("checkpointIds", string.Join(",", Ids)), ("retention", Retention)];
}
