using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl images verify GROUP [ID]</c></summary>
public static class ImagesVerifyCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group of the checkpoint");
        var id = new Argument<string?>("ID") { Description = "Checkpoint id (default: the newest)", Arity = ArgumentArity.ZeroOrOne };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var verify = new Command("verify", "Check a checkpoint's manifest, magic numbers, versions and checksums, and the same of every checkpoint its incremental images apply to, down the chain")
        {
            group, id, agent, json,
        };

        verify.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var checkpointId = parse.GetValue(id)
                ?? await ImagesListCommand.NewestIdAsync(client, groupName, $"cannot verify the newest checkpoint of group {groupName}", ct);

            var reply = await client.CallAsync($"cannot verify checkpoint {checkpointId} of group {groupName}",
                api => api.VerifyImageAsync(new VerifyImageRequest { Group = groupName, Id = checkpointId }, cancellationToken: ct).ResponseAsync, ct);
            var result = VerifyResult.From(reply) with { Group = groupName, Id = checkpointId };

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.VerifyResult);
            }

            if (!result.Ok)
            {
                throw new HactlException($"checkpoint {checkpointId} of group {groupName} is damaged",
                    ErrorLine.Clause(result.Error ?? "the agent gave no reason"),
                    $"do not restore it: restore an older one with 'hactl restore {groupName} --checkpoint ID' or take a new checkpoint");
            }
            if (!parse.GetValue(json))
            {
                Console.WriteLine($"checkpoint {checkpointId} of group {groupName}: ok");
            }

            return ExitCodes.Ok;
        });
        return verify;
    }
}
