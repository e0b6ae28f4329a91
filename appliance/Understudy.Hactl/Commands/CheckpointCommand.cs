using System.CommandLine;
using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl checkpoint GROUP [--full]</c></summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group to checkpoint");
        var full = new Option<bool>("--full") { Description = "Write a full checkpoint even when an incremental one is possible" };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var checkpoint = new Command("checkpoint",
            "Checkpoint every process of GROUP together, consistently: incremental (only the pages written since) once a full checkpoint exists, full every so often or with --full")
        {
            group, full, agent, json,
        };

        checkpoint.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            var asJson = parse.GetValue(json);
            using var client = AgentClient.Connect(parse.GetValue(agent));
            using var progress = new ProgressLine(asJson);

            var result = await RunAsync(client, groupName, parse.GetValue(full), p => progress.Show(Describe(groupName, p)), ct);
            progress.Clear();

            if (asJson)
            {
                Json.Write(result, HactlJsonContext.Default.CheckpointSummary);
            }
            else
            {
                Console.WriteLine(Describe(result));
            }

            return ExitCodes.Ok;
        });
        return checkpoint;
    }

    /// <summary>Runs a checkpoint, reporting each progress message, and returns its result.</summary>
    public static Task<CheckpointSummary> RunAsync(AgentClient client, string group, bool full,
        Action<CheckpointProgress> onProgress, CancellationToken ct) =>
        client.CallAsync($"cannot checkpoint group {group}", async api =>
        {
            using var call = api.Checkpoint(new CheckpointRequest { Group = group, Full = full }, cancellationToken: ct);
            CheckpointResult? result = null;
            await foreach (var message in call.ResponseStream.ReadAllAsync(ct))
            {
                onProgress(message);
                result = message.Result ?? result;
            }
            return result is null
                ? throw new HactlException($"cannot checkpoint group {group}", "the agent ended the checkpoint without a result",
                    "check the agent's log, then 'hactl images list " + group + "'")
                : CheckpointSummary.From(result);
        }, ct);

    public static string Describe(string group, CheckpointProgress p) =>
        p.MembersTotal > 0
            ? $"checkpoint {group}: phase {p.Phase} {p.MembersDone}/{p.MembersTotal} members ..."
            : $"checkpoint {group}: phase {p.Phase} ...";

    /// <summary>"checkpoint 000004 of web: incremental on 000003, 12.1 MB, 3 members, frozen 8 ms, 40 ms in all".</summary>
    public static string Describe(CheckpointSummary r) =>
        $"checkpoint {r.Id} of {r.Group}: {r.Kind}{(r.Base is null ? "" : $" on {r.Base}")}, {Units.Bytes(r.Bytes)}, {Units.Count(r.Members, "member")}, " +
        $"frozen {Units.Millis(r.FrozenMs)}, {Units.Millis(r.DurationMs)} in all";
}
