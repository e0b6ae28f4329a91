using System.CommandLine;
using Grpc.Core;
using Understudy.GuestAgent.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl events [GROUP] [--follow] [--last N]</c></summary>
public static class EventsCommand
{
    public static Command Create()
    {
        var group = new Argument<string?>("GROUP") { Description = "Show only this group's events", Arity = ArgumentArity.ZeroOrOne };
        var follow = new Option<bool>("--follow", "-f")
        {
            Description = "After the history, print live events until interrupted (with --json: one JSON object per line)",
        };
        var last = new Option<int?>("--last")
        {
            Description = "Show only the newest N events of the history",
            HelpName = "N",
            CustomParser = result => WholeNumber.AtLeast("--last", 1)(result),
        };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var events = new Command("events",
            "Show the lifecycle events (launched, joined, exited, checkpoints, faults, recoveries, policy changes), also from before the agent's last restart")
        {
            group, follow, last, agent, json,
        };

        events.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetValue(group);
            var following = parse.GetValue(follow);
            var asJson = parse.GetValue(json);
            var request = new EventsRequest { Group = groupName ?? "", Follow = following, Last = parse.GetValue(last) ?? 0 };
            var what = groupName is null ? "cannot read the events" : $"cannot read the events of group {groupName}";

            using var client = AgentClient.Connect(parse.GetValue(agent));
            var collected = new List<EventView>();
            try
            {
                await client.CallAvailabilityAsync(what, async api =>
                {
                    using var call = api.Events(request, cancellationToken: ct);
                    await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                    {
                        var view = EventView.From(e);
                        if (asJson && !following)
                        {
                            collected.Add(view);
                        }
                        else if (asJson)
                        {
                            Console.WriteLine(Json.SerializeLine(view, HactlJsonContext.Default.EventView));
                        }
                        else
                        {
                            Console.WriteLine(Describe(view));
                        }
                    }
                    return 0;
                }, ct);
            }
            catch (Exception e) when (following && ct.IsCancellationRequested && e is OperationCanceledException or RpcException)
            {
                // Ctrl-C (or SIGTERM) is how --follow ends.
            }
            if (asJson && !following)
            {
                Json.Write(new EventsResult(collected), HactlJsonContext.Default.EventsResult);
            }

            return ExitCodes.Ok;
        });
        return events;
    }

    /// <summary>"2026-11-25T19:22:01.123Z  #42  web  recovery.started  recovery 1 of at most 3 started: ...".</summary>
    private static string Describe(EventView e) => $"{e.Time}  #{e.Seq}  {e.Group}  {e.Type}  {e.Message}";
}
