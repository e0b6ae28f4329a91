using System.Text.Json.Serialization;
using Understudy.GuestAgent.Contracts;

namespace Understudy.Hactl.Output;

// The shapes of the JSON documents hactl prints. Property names become camelCase.

public sealed record LaunchResult(string Group, string App, int Pid, int HostPid)
{
    public static LaunchResult From(LaunchReply r) => new(r.Group, r.App, r.Pid, r.HostPid);
}

/// <param name="Kind">full, or incremental if any process wrote an incremental image.</param>
/// <param name="Base">incremental: the checkpoint its images apply to; left out for full.</param>
public sealed record CheckpointSummary(string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, double DurationMs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Base = null)
{
    public static CheckpointSummary From(CheckpointResult r) =>
        new(r.Group, r.Id, r.Kind, r.Bytes, r.Members, r.FrozenMs, r.DurationMs, r.BaseId.Length == 0 ? null : r.BaseId);
}

/// <param name="Bytes">moved over the link, every round</param>
/// <param name="FrozenMs">from the last round's freeze until the target ran the group</param>
/// <param name="DurationMs">the whole migration</param>
public sealed record MigrationSummary(string Group, string To, string CheckpointId, int Rounds, int Members, long Bytes, double FrozenMs, double DurationMs)
{
    public static MigrationSummary From(MigrateResult r) => new(r.Group, r.To, r.CheckpointId, r.Rounds, r.Members, r.Bytes, r.FrozenMs, r.DurationMs);
}

public sealed record StopResult(string Group, int Killed)
{
    public static StopResult From(StopReply r) => new(r.Group, r.Killed);
}

public sealed record MemberInfo(int Pid, int HostPid, string App, int ExecCount, string Program, string State, string Tracker)
{
    public static MemberInfo From(Member m) => new(m.Pid, m.HostPid, m.App, m.ExecCount, m.Program, m.State, m.Tracker);

    public static IReadOnlyList<MemberInfo> From(IEnumerable<Member> members) => members.Select(From).ToList();
}

public sealed record RestoreResult(string Group, string Id, IReadOnlyList<MemberInfo> Members, double DurationMs)
{
    public static RestoreResult From(RestoreReply r) => new(r.Group, r.Id, MemberInfo.From(r.Members), r.DurationMs);
}

/// <summary>A process of a group that is not a member: it is in no checkpoint.</summary>
public sealed record UnprotectedInfo(int Pid, int HostPid, string Program);

public sealed record GroupInfo(string Name, string State, string? LastCheckpoint, int InitHostPid, IReadOnlyList<MemberInfo> Members,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] AvailabilityInfo? Availability,
    int Processes, IReadOnlyList<UnprotectedInfo> Unprotected,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ReplicationInfo? Replication = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? FrozenBecause = null)
{
    public static GroupInfo From(Group g) =>
        new(g.Name, g.State, NullIfEmpty(g.LastCheckpoint), g.InitHostPid, MemberInfo.From(g.Members), AvailabilityInfo.From(g.Availability),
            g.Processes, g.Unprotected.Select(p => new UnprotectedInfo(p.Pid, p.HostPid, p.Program)).ToList(), ReplicationInfo.From(g.Replication),
            NullIfEmpty(g.FrozenBecause));

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

/// <summary>A group's streaming to its standby node.</summary>
/// <param name="State">in-sync, behind or unreachable</param>
public sealed record ReplicationInfo(
    string Standby, string State, int BehindCheckpoints, long BehindBytes, string? LastReplicated, string? UnreachableSince, string? Error, long BytesSent)
{
    public static ReplicationInfo? From(ReplicationStatus? r) => r is null ? null
        : new(r.Standby, r.State, r.BehindCheckpoints, r.BehindBytes, Empty(r.LastReplicated), Empty(r.UnreachableSince), Empty(r.Error), r.BytesSent);

    /// <summary>One line for people: in sync, behind by N checkpoints (bytes), or unreachable since when.</summary>
    public string Describe() => State switch
    {
        "in-sync" => $"standby {Standby}: in sync (checkpoint {LastReplicated})",
        "behind" => $"standby {Standby}: behind by {BehindCheckpoints} checkpoint(s), {Units.Bytes(BehindBytes)}" +
                    (LastReplicated is null ? ", none replicated yet" : $" (last replicated {LastReplicated})"),
        _ => $"standby {Standby}: unreachable since {UnreachableSince}, behind by {BehindCheckpoints} checkpoint(s), {Units.Bytes(BehindBytes)}: {Error}",
    };

    private static string? Empty(string s) => s.Length == 0 ? null : s;
}

public sealed record StatusResult(IReadOnlyList<GroupInfo> Groups)
{
    public static StatusResult From(StatusReply r) => new(r.Groups.Select(GroupInfo.From).ToList());
}

/// <param name="Kind">full, incremental, merged (an incremental checkpoint merged into full images) or corrupt.</param>
/// <param name="Base">incremental: the checkpoint it applies to; merged: the one it was merged onto; null otherwise.</param>
public sealed record CheckpointEntry(string Group, string Id, string Kind, string? Base, long Bytes, string CreatedUtc, int Members, bool Merged)
{
    public static CheckpointEntry From(CheckpointInfo c) =>
        new(c.Group, c.Id, c.Merged ? "merged" : c.Kind, c.BaseId.Length == 0 ? null : c.BaseId, c.Bytes, c.CreatedUtc, c.Members, c.Merged);
}

public sealed record ImagesListResult(IReadOnlyList<CheckpointEntry> Checkpoints)
{
    public static ImagesListResult From(ListImagesReply r) => new(r.Checkpoints.Select(CheckpointEntry.From).ToList());
}

public sealed record VerifyResult(string Group, string Id, bool Ok,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Error)
{
    public static VerifyResult From(VerifyImageReply r) =>
        new(r.Group, r.Id, r.Ok, r.Ok || r.Error.Length == 0 ? null : r.Error);
}

public sealed record Feature(string Name, bool Available, string Detail);

public sealed record DoctorResult(IReadOnlyList<Feature> Features, string Tracker);
