using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl group show GROUP</c></summary>
public static class GroupShowCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group with a policy");
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var show = new Command("show",
            "Show GROUP's policy and how it stands: state and reason, applications in launch order, health checks, checkpoint schedule, recovery")
        {
            group, agent, json,
        };

        show.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAvailabilityAsync($"cannot show group {groupName}",
                api => api.ShowGroupAsync(new GroupRequest { Group = groupName }, cancellationToken: ct).ResponseAsync, ct);
            var view = GroupView.From(reply);

            if (parse.GetValue(json))
            {
                Json.Write(view, HactlJsonContext.Default.GroupView);
            }
            else
            {
                WriteHuman(view);
            }

            return ExitCodes.Ok;
        });
        return show;
    }

    private static void WriteHuman(GroupView g)
    {
        Console.WriteLine($"group {g.Group}: {g.Availability?.Describe() ?? "stopped"}; since {g.Availability?.Since}");
        Console.WriteLine($"  policy: {g.PolicySource}, applied {g.PolicyApplied}; autostart {(g.Autostart ? "yes" : "no")}");
        Console.WriteLine($"  images: {g.ImagesDir}");
        var c = g.Checkpoints;
        Console.WriteLine(c.Interval == "off"
            ? $"  checkpoints: not scheduled, keep {c.Retention}, compression {c.Compression}; last {c.LastCheckpoint ?? "none"}"
            : $"  checkpoints: every {c.Interval}, full every {c.FullEvery}, keep {c.Retention}, compression {c.Compression}; last {c.LastCheckpoint ?? "none"}" +
              (c.NextDue is null ? "" : $", next due {c.NextDue}"));
        Console.WriteLine($"  recovery: {g.Recovery.Action}, at most {g.Recovery.MaxAttempts} attempts within {g.Recovery.Window}");
        if (g.LastFault is not null)
        {
            Console.WriteLine($"  last fault: {g.LastFault}");
        }

        Console.WriteLine("  applications, in launch order:");
        var order = 0;
        foreach (var app in g.Apps)
        {
            var running = app.Pid == 0 ? "not running" : $"pid {app.Pid} (host pid {app.HostPid})";
            var after = app.After.Count == 0 ? "" : $", after {string.Join(", ", app.After)}";
            Console.WriteLine($"    {++order}. {app.Name}: {running}{after}");
            Console.WriteLine($"       command: {ShellQuote.Join(app.Argv)}");
            Console.WriteLine($"       ready: {app.Ready}");
            foreach (var health in app.Health)
            {
                var detail = health.LastDetail is null ? "" : $" ({health.LastDetail})";
                var failures = health.ConsecutiveFailures > 0 ? $", {Units.Count(health.ConsecutiveFailures, "failure")} in a row" : "";
                Console.WriteLine($"       health: {health.Check}: {health.State}{failures}{detail}");
            }
        }
    }
}
