using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>Where a migration is: a pre-copy round, the last (frozen) round, or the target starting the group.</summary>
/// <param name="Phase">precopy, final, takeover</param>
/// <param name="RoundBytes">the size of this round's checkpoint</param>
/// <param name="BytesSent">moved over the link so far, all rounds</param>
internal sealed record MigrationProgress(string Phase, int Round, string CheckpointId, long RoundBytes, long BytesSent, double BytesPerSecond)
{
    public const string PreCopy = "precopy";
    public const string Final = "final";
    public const string TakeOver = "takeover";
}

/// <summary>A finished migration, as the Migrate call reports it.</summary>
/// <param name="FrozenMs">from the last round's freeze until the target reported the group running</param>
/// <param name="BytesSent">what crossed the link: every round's images the target lacked</param>
internal sealed record MigrationOutcome(
    string Group, string Target, string CheckpointId, int Rounds, int Members, long BytesSent, double FrozenMs, double DurationMs);

// Events of a migration (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record GroupMigrated(string Group, string Target, string CheckpointId, int Rounds, long BytesSent, double FrozenMs) : AgentEvent(Group)
{
    public override string Type => "group.migrated";
    public override string Message =>
        $"group moved to node {Target} from checkpoint {CheckpointId} after {Rounds} rounds, {BytesSent} bytes sent, frozen {FrozenMs:F1} ms; it runs there now";
    public override IEnumerable<(string, object?)> Fields() =>
        [("target", Target), ("checkpointId", CheckpointId), ("rounds", Rounds), ("bytes", BytesSent), ("frozenMs", Math.Round(FrozenMs, 1))];
}

internal sealed record MigrationFailed(string Group, string Target, string Reason) : AgentEvent(Group)
{
    public override string Type => "migration.failed";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message => $"migration to node {Target} failed: {Reason}";
    public override IEnumerable<(string, object?)> Fields() => [("target", Target), ("reason", Reason)];
}

internal sealed record GroupTakenOver(string Group, string Source, string CheckpointId, int Members) : AgentEvent(Group)
{
    public override string Type => "group.taken-over";
    public override string Message => $"group taken over from node {Source}: restored from checkpoint {CheckpointId}, {Members} processes run here";
    public override IEnumerable<(string, object?)> Fields() => [("source", Source), ("checkpointId", CheckpointId), ("members", Members)];
}

/// <summary>A migration whose outcome was unknown when it returned is settled: the target answered whether it runs the group.</summary>
internal sealed record MigrationSettled(string Group, string Target, bool RunsThere, string Outcome) : AgentEvent(Group)
{
    public override string Type => "migration.settled";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message =>
        $"migration to node {Target} settled once that node answered: the group {(RunsThere ? "runs there" : "does not run there")}; {Outcome}";
    public override IEnumerable<(string, object?)> Fields() => [("target", Target), ("runsThere", RunsThere), ("outcome", Outcome)];
}

/// <summary>
/// The agent started and found a migration of the group not settled (its record on disk): the
/// group's processes stay frozen here (held) until the target answers whether it runs the group.
/// </summary>
internal sealed record MigrationTakenUp(string Group, string Target, string CheckpointId, int Processes) : AgentEvent(Group)
{
    public override string Type => "migration.unsettled";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message =>
        $"the agent started with the migration to node {Target} (checkpoint {CheckpointId}) not settled: the group's {Processes} processes stay frozen here " +
        $"until node {Target} answers whether it runs the group, then end here or run on";
    public override IEnumerable<(string, object?)> Fields() => [("target", Target), ("checkpointId", CheckpointId), ("processes", Processes)];
}
