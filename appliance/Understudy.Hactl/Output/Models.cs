using System.Text.Json.Serialization;
using Understudy.GuestAgent.Api;

namespace Understudy.Hactl.Output;

// The shapes of the JSON documents hactl prints. Property names become camelCase.

public sealed record LaunchResult(string Group, string App, int Pid, int HostPid)
{
    public static LaunchResult From(LaunchReply r) => new(r.Group, r.App, r.Pid, r.HostPid);
}

public sealed record CheckpointSummary(string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, double DurationMs)
{
    public static CheckpointSummary From(CheckpointResult r) =>
        new(r.Group, r.Id, r.Kind, r.Bytes, r.Members, r.FrozenMs, r.DurationMs);
}

public sealed record StopResult(string Group, int Killed)
{
    public static StopResult From(StopReply r) => new(r.Group, r.Killed);
}

public sealed record MemberInfo(int Pid, int HostPid, string App, int ExecCount, string Program, string State)
{
    public static MemberInfo From(Member m) => new(m.Pid, m.HostPid, m.App, m.ExecCount, m.Program, m.State);

    public static IReadOnlyList<MemberInfo> From(IEnumerable<Member> members) => members.Select(From).ToList();
}

public sealed record RestoreResult(string Group, string Id, IReadOnlyList<MemberInfo> Members, double DurationMs)
{
    public static RestoreResult From(RestoreReply r) => new(r.Group, r.Id, MemberInfo.From(r.Members), r.DurationMs);
}

public sealed record GroupInfo(string Name, string State, string? LastCheckpoint, int InitHostPid, IReadOnlyList<MemberInfo> Members)
{
    public static GroupInfo From(Group g) =>
        new(g.Name, g.State, NullIfEmpty(g.LastCheckpoint), g.InitHostPid, MemberInfo.From(g.Members));

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

public sealed record StatusResult(IReadOnlyList<GroupInfo> Groups)
{
    public static StatusResult From(StatusReply r) => new(r.Groups.Select(GroupInfo.From).ToList());
}

public sealed record CheckpointEntry(string Group, string Id, string Kind, long Bytes, string CreatedUtc, int Members)
{
    public static CheckpointEntry From(CheckpointInfo c) => new(c.Group, c.Id, c.Kind, c.Bytes, c.CreatedUtc, c.Members);
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
