using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Supervision.LaunchOrder;

// A group coming up in launch order, launched or resumed (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record AppReady(string Group, string App, int Vpid, string Condition) : AgentEvent(Group)
{
    public override string Type => "app.ready";
    public override string Message => $"{App} (pid {Vpid}) is ready: {Condition}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("condition", Condition)];
}

internal sealed record GroupStarted(string Group, IReadOnlyList<string> Apps) : AgentEvent(Group)
{
    public override string Type => "group.started";
    public override string Message => $"the group is running: {string.Join(", ", Apps)} started in this order";
    public override IEnumerable<(string, object?)> Fields() => [("apps", string.Join(",", Apps))];
}

/// <summary>app.resumed: after a restore, the processes of one application were let run (LaunchOrderResume).</summary>
/// <param name="Vpid">the application's main process</param>
/// <param name="Processes">how many processes of the application were resumed (its main process and its children)</param>
internal sealed record AppResumed(string Group, string App, int Vpid, int Processes) : AgentEvent(Group)
{
    public override string Type => "app.resumed";
    public override string Message => $"{App} (pid {Vpid}) resumed: {Processes} process{(Processes == 1 ? "" : "es")}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("processes", Processes)];
}
