using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Supervision.Supervisors;

// A supervised group's transitions, faults and recoveries (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record GroupStarting(string Group, string Why) : AgentEvent(Group)
{
    public override string Type => "group.starting";
    public override string Message => $"starting the group ({Why})";
    public override IEnumerable<(string, object?)> Fields() => [("why", Why)];
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

/// <summary>recovery.fallback: the checkpoint chosen does not restore (corrupt, or its base is gone); an older one is tried.</summary>
internal sealed record RecoveryFallback(string Group, int Attempt, string Unusable, string Reason, string Next) : AgentEvent(Group)
{
    public override string Type => "recovery.fallback";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"recovery {Attempt}: checkpoint {Unusable} cannot be restored ({Reason}); restoring the older checkpoint {Next}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("attempt", Attempt), ("checkpointId", Unusable), ("reason", Reason), ("next", Next)];
}

internal sealed record RecoveryFailed(string Group, int Attempt, string Reason) : AgentEvent(Group)
{
    public override string Type => "recovery.failed";
    public override EventSeverity Severity => EventSeverity.Error;
    public override string Message => $"recovery {Attempt} failed: {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("attempt", Attempt), ("reason", Reason)];
}

/// <summary>Supervision of a group taken up after an agent restart goes on: health checks and the checkpoint schedule run again.</summary>
/// <param name="Why">"after the agent restart", or "after the move from node N" on a migration's target</param>
internal sealed record SupervisionResumed(string Group, int AppsRunning, int Apps, string Why) : AgentEvent(Group)
{
    public override string Type => "supervision.resumed";
    public override string Message => $"supervision goes on {Why}: {AppsRunning} of {Apps} application(s) running";
    public override IEnumerable<(string, object?)> Fields() => [("appsRunning", AppsRunning), ("apps", Apps)];
}
