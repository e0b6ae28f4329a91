using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl stop GROUP</c></summary>
public static class StopCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group to stop");
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var stop = new Command("stop", "Kill every process of GROUP; its checkpoints are kept") { group, agent, json };

        stop.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var result = await StopAsync(client, groupName, ct);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.StopResult);
            }
            else
            {
                Console.WriteLine($"stopped group {result.Group}: {Units.Count(result.Killed, "process", "processes")} killed");
            }

            return ExitCodes.Ok;
        });
        return stop;
    }

    public static async Task<StopResult> StopAsync(AgentClient client, string group, CancellationToken ct) =>
        StopResult.From(await client.CallAsync($"cannot stop group {group}",
            api => api.StopAsync(new StopRequest { Group = group }, cancellationToken: ct).ResponseAsync, ct));
}
