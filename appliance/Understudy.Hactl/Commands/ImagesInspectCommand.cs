using System.CommandLine;
using System.Text.Json;
using Understudy.GuestAgent.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl images inspect GROUP ID</c></summary>
public static class ImagesInspectCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group of the checkpoint");
        var id = new Argument<string>("ID") { Description = "Checkpoint id, for example 000003" };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var inspect = new Command("inspect",
            "Show a checkpoint's manifest and each member's saved state: mappings with their page runs and holes, threads, descriptors, captured files; --json shows every run")
        { group, id, agent, json };

        inspect.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            var checkpointId = parse.GetRequiredValue(id);
            var what = $"cannot inspect checkpoint {checkpointId} of group {groupName}";
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAsync(what,
                api => api.InspectImageAsync(new InspectImageRequest { Group = groupName, Id = checkpointId }, cancellationToken: ct).ResponseAsync, ct);

            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(reply.Json);
            }
            catch (JsonException e)
            {
                throw new HactlException(what, $"the agent sent a document that is not JSON ({ErrorLine.Clause(e.Message)})", "check the agent's log and version");
            }

            using (document)
            {
                if (parse.GetValue(json))
                {
                    Json.WriteRaw(reply.Json);
                }
                else
                {
                    new JsonSummary(Console.Out).Write(document.RootElement);
                }
            }
            return ExitCodes.Ok;
        });
        return inspect;
    }
}
