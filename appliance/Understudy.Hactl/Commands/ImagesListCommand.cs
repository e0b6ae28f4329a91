using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl images list [GROUP]</c></summary>
public static class ImagesListCommand
{
    public static Command Create()
    {
        var group = new Argument<string?>("GROUP") { Description = "Show only this group's checkpoints", Arity = ArgumentArity.ZeroOrOne };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var list = new Command("list",
            "List the committed checkpoints, oldest first: kind (full, incremental, or merged: an incremental one merged into full images), base and size")
        { group, agent, json };

        list.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var result = await ListAsync(client, groupName, ct);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.ImagesListResult);
                return ExitCodes.Ok;
            }
            if (result.Checkpoints.Count == 0)
            {
                Console.WriteLine(groupName is null
                    ? "no checkpoints; take one with 'hactl checkpoint GROUP'"
                    : $"no checkpoints of group {groupName}; take one with 'hactl checkpoint {groupName}'");
                return ExitCodes.Ok;
            }
            var table = new Table("GROUP", "ID", "KIND", "BASE", "SIZE", "MEMBERS", "CREATED (UTC)");
            foreach (var c in result.Checkpoints)
            {
                table.Add(c.Group, c.Id, c.Kind, c.Base ?? "-", Units.Bytes(c.Bytes), c.Members, c.CreatedUtc);
            }

            table.WriteTo(Console.Out);
            return ExitCodes.Ok;
        });
        return list;
    }

    public static async Task<ImagesListResult> ListAsync(AgentClient client, string? group, CancellationToken ct)
    {
        var what = group is null ? "cannot list the checkpoints" : $"cannot list the checkpoints of group {group}";
        var reply = await client.CallAsync(what,
            api => api.ListImagesAsync(new ListImagesRequest { Group = group ?? "" }, cancellationToken: ct).ResponseAsync, ct);
        return ImagesListResult.From(reply);
    }

    /// <summary>The newest committed checkpoint of a group (ids are zero-padded, so they sort as text).</summary>
    public static async Task<string> NewestIdAsync(AgentClient client, string group, string what, CancellationToken ct)
    {
        var list = await ListAsync(client, group, ct);
        var newest = list.Checkpoints.Where(c => c.Group == group).Select(c => c.Id).Max(StringComparer.Ordinal);
        return newest ?? throw new HactlException(what, $"group {group} has no checkpoint", $"take one with 'hactl checkpoint {group}'");
    }
}
