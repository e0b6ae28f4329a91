using System.CommandLine;
using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl migrate GROUP --to NODE</c></summary>
public static class MigrateCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group to move; it runs on the agent that --agent names");
        var to = new Option<string>("--to")
        {
            Description = "The node to move it to: a peer of the agent (its --peer NAME=IP:PORT)",
            HelpName = "NODE",
            Required = true,
        };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var migrate = new Command("migrate",
            "Move a running group to another node, live: its memory is copied ahead round after round while it runs, then it is frozen, " +
            "the last changes are sent and the node runs it; the processes here end only once it runs there, and if anything fails first it runs on here. " +
            "Should the link break as the node starts it, the group stays frozen here until that node says whether it runs it, then ends here or runs on here. " +
            "A group with a policy takes it along: the node supervises it from then on, and this one keeps the policy as the standby's copy and never starts the group by it")
        {
            group, to, agent, json,
        };

        migrate.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            var node = parse.GetRequiredValue(to);
            var asJson = parse.GetValue(json);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            using var progress = new ProgressLine(asJson);

            var result = await client.CallMigrationsAsync($"cannot migrate group {groupName} to {node}", async api =>
            {
                using var call = api.Migrate(new MigrateRequest { Group = groupName, To = node }, cancellationToken: ct);
                MigrateResult? last = null;
                await foreach (var message in call.ResponseStream.ReadAllAsync(ct))
                {
                    progress.Show(Describe(groupName, node, message));
                    last = message.Result ?? last;
                }
                return last is null
                    ? throw new HactlException($"cannot migrate group {groupName} to {node}", "the agent ended the migration without a result",
                        $"check 'hactl status {groupName}' here and on {node}, and the agent's log")
                    : MigrationSummary.From(last);
            }, ct);
            progress.Clear();

            if (asJson)
            {
                Json.Write(result, HactlJsonContext.Default.MigrationSummary);
            }
            else
            {
                Console.WriteLine(Describe(result));
            }
            return ExitCodes.Ok;
        });
        return migrate;
    }

    /// <summary>"migrate web to node-b: round 2 (pre-copy), checkpoint 000005 of 12.1 MB, 140 MB sent at 95 MB/s ...".</summary>
    public static string Describe(string group, string node, MigrateProgress p)
    {
        var what = p.Phase switch
        {
            "precopy" => $"round {p.Round} (copying ahead while it runs)",
            "final" => $"round {p.Round} (frozen: the last changes)",
            "takeover" => $"{node} is starting it",
            _ => p.Phase,
        };
        var size = p.RoundBytes > 0 ? $", checkpoint {p.CheckpointId} of {Units.Bytes(p.RoundBytes)}" : "";
        return $"migrate {group} to {node}: {what}{size}, {Units.Bytes(p.BytesSent)} sent at {Units.Bytes((long)p.BytesPerSecond)}/s ...";
    }

    /// <summary>"group web runs on node-b now: 3 rounds, 140 MB sent, frozen 180 ms, 2.4 s in all (checkpoint 000007, 3 processes)".</summary>
    public static string Describe(MigrationSummary r) =>
        $"group {r.Group} runs on {r.To} now: {Units.Count(r.Rounds, "round")}, {Units.Bytes(r.Bytes)} sent, frozen {Units.Millis(r.FrozenMs)}, " +
        $"{Units.Millis(r.DurationMs)} in all (checkpoint {r.CheckpointId}, {Units.Count(r.Members, "process", "processes")})";
}
