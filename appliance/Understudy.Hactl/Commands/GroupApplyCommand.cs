using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl group apply -f POLICY.yaml</c></summary>
public static class GroupApplyCommand
{
    public static Command Create()
    {
        var file = new Option<string>("--file", "-f")
        {
            Description = "The policy file (YAML; see docs/policy.md)",
            HelpName = "POLICY.yaml",
            Required = true,
        };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var apply = new Command("apply",
            "Create or update a group from a policy file; a running group takes the change without a restart. An invalid file changes nothing")
        {
            file, agent, json,
        };

        apply.SetHandler(async (parse, ct) =>
        {
            var path = parse.GetRequiredValue(file);
            var what = $"cannot apply policy {path}";
            string yaml;
            try
            {
                var size = new FileInfo(path).Length;
                if (size > ContractLimits.MaxPolicyBytes)
                {
                    throw new HactlException(what, $"the file is {Units.Bytes(size)}, more than a policy may be ({Units.Bytes(ContractLimits.MaxPolicyBytes)})",
                        "check that -f names the policy file");
                }
                yaml = await File.ReadAllTextAsync(path, ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HactlException(what, ErrorLine.Clause(e.Message), "check the path given with -f");
            }

            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAvailabilityAsync(what,
                api => api.ApplyPolicyAsync(new ApplyPolicyRequest { Yaml = yaml, Source = path }, cancellationToken: ct).ResponseAsync, ct);
            var result = ApplyResult.From(reply);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.ApplyResult);
            }
            else
            {
                WriteHuman(result, path);
            }

            return ExitCodes.Ok;
        });
        return apply;
    }

    private static void WriteHuman(ApplyResult result, string path)
    {
        var state = result.Availability?.State ?? "stopped";
        if (result.Created)
        {
            var hint = state == "stopped" ? $"; start it with 'hactl group start {result.Group}'" : "";
            Console.WriteLine($"group {result.Group} created from {path}: {state}{hint}");
            return;
        }
        if (result.Changes.Count == 0)
        {
            Console.WriteLine($"group {result.Group}: the policy is unchanged ({state})");
            return;
        }
        Console.WriteLine($"group {result.Group} updated from {path} ({state}):");
        foreach (var change in result.Changes)
        {
            Console.WriteLine($"  {change.Text}{(change.Live ? "" : " (from the next start)")}");
        }
    }
}
