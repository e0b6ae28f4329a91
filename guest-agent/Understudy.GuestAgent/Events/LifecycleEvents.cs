using Understudy.GuestAgent.Policies;

namespace Understudy.GuestAgent.Events;

// The lifecycle events of docs/policy.md ("Events"). Types are "subject.what-happened".

internal sealed record MemberLaunched(string Group, string App, int Vpid, string Program) : AgentEvent(Group)
{
    public override string Type => "member.launched";
    public override string Message => $"launched {App} as pid {Vpid}: {Program}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("program", Program)];
}

internal sealed record MemberJoined(string Group, string App, int Vpid, int HostPid, string Origin, int ExecCount) : AgentEvent(Group)
{
    public override string Type => "member.joined";
    public override string Message => $"member {Vpid} ({App}) joined: origin {Origin}, exec count {ExecCount}, host pid {HostPid}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("app", App), ("pid", Vpid), ("hostPid", HostPid), ("origin", Origin), ("execCount", ExecCount)];
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

/// <param name="Trigger">manual, scheduled</param>
internal sealed record CheckpointTaken(string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, string Trigger) : AgentEvent(Group)
{
    public override string Type => "checkpoint.taken";
    public override string Message => $"checkpoint {Id} taken ({Trigger}): {Kind}, {Bytes} bytes, {Members} members, frozen {FrozenMs:F1} ms";
    public override IEnumerable<(string, object?)> Fields() =>
        [("checkpointId", Id), ("kind", Kind), ("bytes", Bytes), ("members", Members), ("frozenMs", Math.Round(FrozenMs, 1)), ("trigger", Trigger)];
}

internal sealed record CheckpointFailed(string Group, string Reason, string Trigger) : AgentEvent(Group)
{
    public override string Type => "checkpoint.failed";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"checkpoint failed ({Trigger}): {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("reason", Reason), ("trigger", Trigger)];
}

internal sealed record CheckpointsDeleted(string Group, IReadOnlyList<string> Ids, int Retention) : AgentEvent(Group)
{
    public override string Type => "checkpoint.deleted";
    public override string Message => $"deleted checkpoint{(Ids.Count == 1 ? "" : "s")} {string.Join(", ", Ids)} (keeping {Retention})";
    public override IEnumerable<(string, object?)> Fields() => [("checkpointIds", string.Join(",", Ids)), ("retention", Retention)];
}

internal sealed record PolicyApplied(string Group, string Source, IReadOnlyList<PolicyChange> Changes, bool Created) : AgentEvent(Group)
{
    public override string Type => Created ? "policy.applied" : "policy.changed";
    public override string Message => Created
        ? $"policy applied from {Source}"
        : $"policy changed from {Source}: {string.Join("; ", Changes.Select(c => c.Live ? c.Text : c.Text + " (from the next start)"))}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("source", Source), ("changes", Created ? null : string.Join("; ", Changes.Select(c => c.Text)))];
}

internal sealed record GroupStarting(string Group, string Why) : AgentEvent(Group)
{
    public override string Type => "group.starting";
    public override string Message => $"starting the group ({Why})";
    public override IEnumerable<(string, object?)> Fields() => [("why", Why)];
}

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

internal sealed record GroupStartFailed(string Group, string Reason) : AgentEvent(Group)
{
    public override string Type => "group.start-failed";
    public override EventSeverity Severity => EventSeverity.Error;
    public override string Message => $"the group did not start: {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("reason", Reason)];
}

internal sealed record GroupStopped(string Group, string Why) : AgentEvent(Group)
{
    public override string Type => "group.stopped";
    public override string Message => $"the group is stopped ({Why})";
    public override IEnumerable<(string, object?)> Fields() => [("why", Why)];
}

internal sealed record GroupFailed(string Group, string Reason) : AgentEvent(Group)
{
    public override string Type => "group.failed";
    public override EventSeverity Severity => EventSeverity.Error;
    public override string Message => $"the group is stopped and marked failed: {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("reason", Reason)];
}

internal sealed record FaultDetected(string Group, string Kind, string? App, int? Vpid, string Reason) : AgentEvent(Group)
{
    public override string Type => "fault.detected";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"fault ({Kind}): {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("kind", Kind), ("app", App), ("pid", Vpid), ("reason", Reason)];
}

internal sealed record RecoveryStarted(string Group, int Attempt, int MaxAttempts, string Action, string Fault) : AgentEvent(Group)
{
    public override string Type => "recovery.started";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"recovery {Attempt} of at most {MaxAttempts} started: {Action} the whole group after: {Fault}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("attempt", Attempt), ("maxAttempts", MaxAttempts), ("action", Action), ("fault", Fault)];
}

/// <param name="CheckpointId">the checkpoint restored; null when the group was restarted fresh</param>
internal sealed record RecoveryFinished(string Group, int Attempt, string Action, string? CheckpointId, double DurationMs) : AgentEvent(Group)
{
    public override string Type => "recovery.finished";
    public override string Message => CheckpointId is null
        ? $"recovery {Attempt} finished: the group was restarted fresh in {DurationMs:F0} ms"
        : $"recovery {Attempt} finished: the group was restored from checkpoint {CheckpointId} in {DurationMs:F0} ms";
    public override IEnumerable<(string, object?)> Fields() =>
        [("attempt", Attempt), ("action", Action), ("checkpointId", CheckpointId), ("durationMs", Math.Round(DurationMs))];
}

internal sealed record RecoveryFailed(string Group, int Attempt, string Reason) : AgentEvent(Group)
{
    public override string Type => "recovery.failed";
    public override EventSeverity Severity => EventSeverity.Error;
    public override string Message => $"recovery {Attempt} failed: {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("attempt", Attempt), ("reason", Reason)];
}

/// <summary>app.resumed: after a restore, the processes of one application were let run (Supervision/LaunchOrderResume).</summary>
/// <param name="Vpid">the application's main process</param>
/// <param name="Processes">how many processes of the application were resumed (its main process and its children)</param>
internal sealed record AppResumed(string Group, string App, int Vpid, int Processes) : AgentEvent(Group)
{
    public override string Type => "app.resumed";
    public override string Message => $"{App} (pid {Vpid}) resumed: {Processes} process{(Processes == 1 ? "" : "es")}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("processes", Processes)];
}

/// <summary>policy.deleted: hactl group delete took a stopped group's policy away.</summary>
/// <param name="Source">the file the policy had been applied from</param>
internal sealed record PolicyDeleted(string Group, string Source) : AgentEvent(Group)
{
    public override string Type => "policy.deleted";
    public override string Message => Source.Length == 0 ? "policy deleted" : $"policy deleted (it was applied from {Source})";
    public override IEnumerable<(string, object?)> Fields() => [("source", Source.Length == 0 ? null : Source)];
}
