using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl restore GROUP [--checkpoint ID]</c></summary>
public static class RestoreCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group to restore");
        var checkpointId = new Option<string?>("--checkpoint")
        {
            Description = "Checkpoint to restore (default: the newest)",
            HelpName = "ID",
        };
        var force = new Option<bool>("--force")
        {
            Description = "Restore even though the group is running: its processes are killed and rolled back to the checkpoint",
        };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var restore = new Command("restore", "Recreate every process of GROUP from a checkpoint, with the same pids; a running group is refused unless --force")
        {
            group, checkpointId, force, agent, json,
        };

        restore.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var result = await RestoreAsync(client, groupName, parse.GetValue(checkpointId), parse.GetValue(force), ct);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.RestoreResult);
            }
            else
            {
                Console.WriteLine($"restored group {result.Group} from checkpoint {result.Id}: " +
                                  $"{Units.Count(result.Members.Count, "member")} in {Units.Millis(result.DurationMs)}");
                MemberTable.Write(Console.Out, result.Members, "  ");
            }
            return ExitCodes.Ok;
        });
        return restore;
    }

    public static async Task<RestoreResult> RestoreAsync(AgentClient client, string group, string? id, bool force, CancellationToken ct)
    {
        var what = id is null ? $"cannot restore group {group}" : $"cannot restore group {group} from checkpoint {id}";
        var reply = await client.CallAsync(what,
            api => api.RestoreAsync(new RestoreRequest { Group = group, CheckpointId = id ?? "", Force = force }, cancellationToken: ct).ResponseAsync, ct);
        return RestoreResult.From(reply);
    }
}
