using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl group delete GROUP</c>: removes a stopped group's policy.</summary>
public static class GroupDeleteCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group with a policy, stopped (see hactl group stop)");
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var command = new Command("delete",
            "Remove GROUP's policy and its supervision; a running group is refused (stop it first). Its checkpoints are kept")
        {
            group, agent, json,
        };

        command.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAvailabilityAsync($"cannot delete group {groupName}",
                api => api.DeleteGroupAsync(new GroupRequest { Group = groupName }, cancellationToken: ct).ResponseAsync, ct);
            var result = new GroupDeleteResult(reply.Group, reply.ImagesDir);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.GroupDeleteResult);
            }
            else
            {
                Console.WriteLine($"deleted the policy of group {result.Group}; its checkpoints are kept in {result.ImagesDir}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
