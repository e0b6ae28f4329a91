using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Operations.Launch;

// What launching and us-init report (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record MemberLaunched(string Group, string App, int Vpid, string Program) : AgentEvent(Group)
{
    public override string Type => "member.launched";
    public override string Message => $"launched {App} as pid {Vpid}: {Program}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("program", Program)];
}

/// <param name="App">null when the process never registered</param>
/// <param name="InitHostPid">the us-init that reaped it: tells a running group's exits from those of one being replaced</param>
internal sealed record MemberExited(string Group, string? App, int Vpid, int ExitCode, int Signal, int InitHostPid) : AgentEvent(Group)
{
    public override string Type => "member.exited";
    public override string Message => $"{Who} {How}";
    public string Who => App is null ? $"process {Vpid}" : $"member {Vpid} ({App})";
    public string How => Signal != 0 ? $"was killed by signal {Signal}" : $"exited with code {ExitCode}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("app", App), ("pid", Vpid), ("exitCode", Signal == 0 ? ExitCode : null), ("signal", Signal != 0 ? Signal : null), ("initHostPid", InitHostPid)];
}

/// <summary>us-init died without being asked to: every process of the group is gone.</summary>
internal sealed record GroupInitDied(string Group, int InitHostPid, string How) : AgentEvent(Group)
{
    public override string Type => "group.init-died";
    public override EventSeverity Severity => EventSeverity.Error;
    public override string Message => $"us-init of the group died ({How}); its processes are gone";
    public override IEnumerable<(string, object?)> Fields() => [("initHostPid", InitHostPid), ("how", How)];
}

/// <summary>The agent started; <paramref name="Adopted"/> are the groups it found running and took up.</summary>
internal sealed record AgentStarted(int AgentPid, IReadOnlyList<string> Adopted) : AgentEvent("")
{
    public override string Type => "agent.started";
    public override string Message => Adopted.Count == 0
        ? $"agent started (pid {AgentPid}); no group was running"
        : $"agent started (pid {AgentPid}); took up {Adopted.Count} running group(s): {string.Join(", ", Adopted)}";
    public override IEnumerable<(string, object?)> Fields() => [("agentPid", AgentPid), ("adopted", string.Join(",", Adopted))];
}

/// <summary>A group whose us-init outlived the previous agent was taken up: its processes ran on throughout.</summary>
/// <param name="Processes">the group's processes (its us-init left out) when it was found</param>
/// <param name="ExitsLost">exits us-init could not keep while no agent listened (it keeps the last 1024)</param>
internal sealed record GroupAdopted(string Group, int InitHostPid, int Processes, int ExitsLost) : AgentEvent(Group)
{
    public override string Type => "group.adopted";
    public override EventSeverity Severity => ExitsLost > 0 ? EventSeverity.Warning : EventSeverity.Info;
    public override string Message => $"taken up after an agent restart: us-init host pid {InitHostPid}, {Processes} process(es) ran on" +
                                      (ExitsLost > 0 ? $"; {ExitsLost} exit(s) while no agent listened were not kept" : "");
    public override IEnumerable<(string, object?)> Fields() =>
        [("initHostPid", InitHostPid), ("processes", Processes), ("exitsLost", ExitsLost > 0 ? ExitsLost : null)];
}
