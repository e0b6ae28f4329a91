using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl status [GROUP]</c></summary>
public static class StatusCommand
{
    public static Command Create()
    {
        var group = new Argument<string?>("GROUP") { Description = "Show only this group", Arity = ArgumentArity.ZeroOrOne };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var status = new Command("status", "Show the groups on this node and their processes") { group, agent, json };

        status.SetHandler(async (parse, ct) =>
        {
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var result = await GetAsync(client, parse.GetValue(group), ct);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.StatusResult);
            }
            else
            {
                WriteHuman(result);
            }

            return ExitCodes.Ok;
        });
        return status;
    }

    public static async Task<StatusResult> GetAsync(AgentClient client, string? group, CancellationToken ct)
    {
        var what = group is null ? "cannot get the status" : $"cannot get the status of group {group}";
        var reply = await client.CallAsync(what,
            api => api.StatusAsync(new StatusRequest { Group = group ?? "" }, cancellationToken: ct).ResponseAsync, ct);
        return StatusResult.From(reply);
    }

    private static void WriteHuman(StatusResult result)
    {
        if (result.Groups.Count == 0)
        {
            Console.WriteLine("no groups; start one with 'hactl launch GROUP -- CMD ARGS...'");
            return;
        }
        var first = true;
        foreach (var g in result.Groups)
        {
            if (!first)
            {
                Console.WriteLine();
            }

            first = false;
            var init = g.InitHostPid == 0 ? "" : $", init host pid {g.InitHostPid}";
            Console.WriteLine($"group {g.Name}: {g.State}, last checkpoint {g.LastCheckpoint ?? "none"}{init}");
            if (g.FrozenBecause is { } frozen)
            {
                Console.WriteLine($"  {frozen}");
            }
            if (g.Replication is { } replication)
            {
                Console.WriteLine($"  replication: {replication.Describe()}");
            }
            if (g.Availability is { } availability)
            {
                Console.WriteLine($"  availability: {availability.Describe()}");
            }

            MemberTable.Write(Console.Out, g.Members, "  ");
            if (g.Unprotected.Count > 0)
            {
                Console.WriteLine($"  warning: {g.Unprotected.Count} of {g.Processes} process(es) are not registered: they run unprotected and are in no checkpoint");
                foreach (var p in g.Unprotected)
                {
                    Console.WriteLine($"    pid {(p.Pid == 0 ? "?" : p.Pid)} (host pid {p.HostPid}) {(p.Program.Length == 0 ? "-" : p.Program)}");
                }
            }
        }
    }
}
