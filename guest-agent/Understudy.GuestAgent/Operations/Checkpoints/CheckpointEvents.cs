using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Operations.Checkpoints;

// Every checkpoint the agent takes or fails to take (docs/policy.md, "Events"). Types are "subject.what-happened".

/// <param name="Trigger">manual, scheduled</param>
internal sealed record CheckpointTaken(string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, string Trigger) : AgentEvent(Group)
{
    public override string Type => "checkpoint.taken";
    public override string Message => $"checkpoint {Id} taken ({Trigger}): {Kind}, {Bytes} bytes, {Members} members, frozen {FrozenMs:F1} ms";
    public override IEnumerable<(string, object?)> Fields() =>
        [("checkpointId", Id), ("kind", Kind), ("bytes", Bytes), ("members", Members), ("frozenMs", Math.Round(FrozenMs, 1)), ("trigger", Trigger)];
}

/// <param name="FrozenMs">how long the group was frozen before it ran again; 0 when it never was</param>
internal sealed record CheckpointFailed(string Group, string Reason, double FrozenMs, string Trigger) : AgentEvent(Group)
{
    public override string Type => "checkpoint.failed";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"checkpoint failed ({Trigger}): {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("reason", Reason), ("frozenMs", Math.Round(FrozenMs, 1)), ("trigger", Trigger)];
}
