using System.Text.Json.Serialization;
using Understudy.GuestAgent.Contracts;

namespace Understudy.Hactl.Output;

// The JSON documents of hactl group ... and hactl events. Property names become camelCase.

public sealed record AvailabilityInfo(
    string State,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reason,
    string Since, int RecentRecoveries, int MaxAttempts)
{
    public static AvailabilityInfo? From(AvailabilityStatus? a) =>
        a is null ? null : new(a.State, a.Reason.Length == 0 ? null : a.Reason, a.Since, a.RecentRecoveries, a.MaxAttempts);

    /// <summary>"running", "failed: it did not start: ...", "recovering (1 of 3): ...".</summary>
    public string Describe()
    {
        var recoveries = RecentRecoveries > 0 ? $" ({RecentRecoveries} of at most {MaxAttempts} recoveries used)" : "";
        return Reason is null ? State + recoveries : $"{State}{recoveries}: {Reason}";
    }
}

public sealed record PolicyChangeInfo(string Text, bool Live);

public sealed record ApplyResult(string Group, bool Created, IReadOnlyList<PolicyChangeInfo> Changes, AvailabilityInfo? Availability)
{
    public static ApplyResult From(ApplyPolicyReply r) =>
        new(r.Group, r.Created, r.Changes.Select(c => new PolicyChangeInfo(c.Text, c.Live)).ToList(), AvailabilityInfo.From(r.Availability));
}

public sealed record GroupActionResult(string Group, AvailabilityInfo? Availability, int Killed)
{
    public static GroupActionResult From(GroupReply r) => new(r.Group, AvailabilityInfo.From(r.Availability), r.Killed);
}

/// <summary>hactl group delete: the group whose policy was removed, and where its checkpoints stay.</summary>
public sealed record GroupDeleteResult(string Group, string ImagesDir);

public sealed record HealthInfo(string Check, string State, int ConsecutiveFailures, string? LastDetail, string? LastPassed)
{
    public static HealthInfo From(HealthCheckInfo h) =>
        new(h.Check, h.State, h.ConsecutiveFailures, NullIfEmpty(h.LastDetail), NullIfEmpty(h.LastPassed));

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

public sealed record AppView(string Name, IReadOnlyList<string> Argv, IReadOnlyList<string> After, string Ready, int Pid, int HostPid,
    IReadOnlyList<HealthInfo> Health)
{
    public static AppView From(AppInfo a) =>
        new(a.Name, a.Argv.ToList(), a.After.ToList(), a.Ready, a.Pid, a.HostPid, a.Health.Select(HealthInfo.From).ToList());
}

public sealed record ScheduleView(string Interval, int FullEvery, int Retention, string Compression, string? NextDue, string? LastCheckpoint);

public sealed record RecoveryView(string Action, int MaxAttempts, string Window);

public sealed record GroupView(
    string Group, AvailabilityInfo? Availability, string PolicySource, string PolicyApplied, bool Autostart, string ImagesDir,
    ScheduleView Checkpoints, RecoveryView Recovery, IReadOnlyList<AppView> Apps, string? LastFault, string PolicyYaml)
{
    public static GroupView From(ShowGroupReply r) => new(
        r.Group, AvailabilityInfo.From(r.Availability), r.PolicySource, r.PolicyApplied, r.Autostart, r.ImagesDir,
        new ScheduleView(r.Checkpoints.Interval, r.Checkpoints.FullEvery, r.Checkpoints.Retention,
            r.Checkpoints.Compression.Length == 0 ? "none" : r.Checkpoints.Compression, NullIfEmpty(r.Checkpoints.NextDue), NullIfEmpty(r.Checkpoints.LastCheckpoint)),
        new RecoveryView(r.Recovery.Action, r.Recovery.MaxAttempts, r.Recovery.Window),
        r.Apps.Select(AppView.From).ToList(), NullIfEmpty(r.LastFault), r.PolicyYaml);

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;
}

public sealed record EventView(long Seq, string Time, string Type, string Severity, string Group, string Message,
    IReadOnlyDictionary<string, string> Fields)
{
    public static EventView From(Event e) =>
        new(e.Seq, e.Time, e.Type, e.Severity, e.Group, e.Message, e.Fields.OrderBy(f => f.Key, StringComparer.Ordinal).ToDictionary());
}

public sealed record EventsResult(IReadOnlyList<EventView> Events);
