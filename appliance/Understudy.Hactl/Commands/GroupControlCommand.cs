using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl group start|stop|restart GROUP</c>: the three verbs share their shape.</summary>
public static class GroupControlCommand
{
    public enum Verb { Start, Stop, Restart }

    public static Command Create(Verb verb)
    {
        var group = CommonOptions.Group("Group with a policy (see hactl group apply)");
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var (name, description) = verb switch
        {
            Verb.Start => ("start", "Launch GROUP's applications in launch order, each once the ones before it are ready; returns when it runs"),
            Verb.Stop => ("stop", "Stop GROUP and its supervision (no recovery); its checkpoints are kept"),
            _ => ("restart", "Stop GROUP, then start it fresh in launch order"),
        };
        var command = new Command(name, description) { group, agent, json };

        command.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            var request = new GroupRequest { Group = groupName };
            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAvailabilityAsync($"cannot {name} group {groupName}", api => verb switch
            {
                Verb.Start => api.StartGroupAsync(request, cancellationToken: ct).ResponseAsync,
                Verb.Stop => api.StopGroupAsync(request, cancellationToken: ct).ResponseAsync,
                _ => api.RestartGroupAsync(request, cancellationToken: ct).ResponseAsync,
            }, ct);
            var result = GroupActionResult.From(reply);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.GroupActionResult);
            }
            else if (verb == Verb.Stop)
            {
                Console.WriteLine($"stopped group {result.Group}: {Units.Count(result.Killed, "process", "processes")} ended");
            }
            else
            {
                Console.WriteLine($"group {result.Group} is {result.Availability?.Describe() ?? "running"}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
