using System.Globalization;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Supervisors;

namespace Understudy.GuestAgent.Api;

/// <summary>Supervision's records (a supervised group's state, its policy, events) to the API's messages (agent_messages.proto).</summary>
internal static class SupervisionMapping
{
    public static string Utc(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    public static AvailabilityStatus ToAvailability(this SupervisorSnapshot snapshot) => new()
    {
        State = snapshot.State.ToString().ToLowerInvariant(),
        Reason = snapshot.Reason ?? "",
        Since = Utc(snapshot.Since),
        RecentRecoveries = snapshot.RecentRecoveries,
        MaxAttempts = snapshot.Applied.Policy.Recovery.MaxAttempts,
    };

    public static ShowGroupReply ToShowReply(this SupervisorSnapshot snapshot, string imagesDir, string? lastCheckpoint)
    {
        var policy = snapshot.Applied.Policy;
        var reply = new ShowGroupReply
        {
            Group = policy.Group,
            Availability = snapshot.ToAvailability(),
            PolicySource = snapshot.Applied.Source,
            PolicyApplied = Utc(new DateTimeOffset(DateTime.SpecifyKind(snapshot.Applied.AppliedUtc, DateTimeKind.Utc))),
            PolicyYaml = snapshot.Applied.Parsed.Text,
            Autostart = policy.Autostart,
            ImagesDir = imagesDir,
            Checkpoints = new CheckpointScheduleInfo
            {
                Interval = PolicyText.Interval(policy.Checkpoints.Interval),
                FullEvery = policy.Checkpoints.FullEvery,
                Retention = policy.Checkpoints.Retention,
                Compression = policy.Checkpoints.Compression,
                NextDue = snapshot.NextCheckpointUtc is { } due ? Utc(due) : "",
                LastCheckpoint = lastCheckpoint ?? "",
            },
            Recovery = new RecoveryInfo
            {
                Action = policy.Recovery.Action.ToToken(),
                MaxAttempts = policy.Recovery.MaxAttempts,
                Window = DurationFormat.Format(policy.Recovery.Window),
            },
            LastFault = snapshot.LastFault?.Reason ?? "",
        };
        foreach (var app in policy.Apps)
        {
            var info = new AppInfo
            {
                Name = app.Name,
                Ready = PolicyText.Describe(app.Ready),
                Pid = snapshot.MainVpids.GetValueOrDefault(app.Name),
            };
            info.Argv.AddRange(app.Argv);
            info.After.AddRange(app.After);
            var running = snapshot.Health.Where(h => h.App == app.Name).ToList();
            info.Health.AddRange(running.Count > 0
                ? running.Select(ToProto)
                : app.Health.Select(h => new HealthCheckInfo { Check = PolicyText.Describe(h), State = "configured" }));
            reply.Apps.Add(info);
        }
        return reply;
    }

    public static Event ToProto(this EventRecord record)
    {
        var message = new Event
        {
            Seq = record.Seq,
            Time = Utc(record.Time),
            Type = record.Type,
            Severity = record.Severity,
            Group = record.Group,
            Message = record.Message,
        };
        foreach (var (name, value) in record.Fields)
        {
            message.Fields[name] = value;
        }
        return message;
    }

    private static HealthCheckInfo ToProto(HealthCheckStatus status) => new()
    {
        Check = status.Check,
        State = status.State,
        ConsecutiveFailures = status.ConsecutiveFailures,
        LastDetail = status.LastDetail,
        LastPassed = status.LastPassedUtc is { } passed ? Utc(passed) : "",
    };
}
