using System.Diagnostics;
using System.Text.Json;
using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Autostart groups start when the agent starts; the event history survives agent restarts;
/// hactl events --follow streams live events.
/// </summary>
public sealed class AgentRestartTests(SupervisionFixture fx, ITestOutputHelper output) : IClassFixture<SupervisionFixture>
{
    private const int SigInt = 2;

    [Fact]
    public async Task AutostartGroup_StartsWithTheAgent_AndEventsKeepTheirHistoryAcrossTheRestart()
    {
        await using var g = fx.Group("auto", output);
        var port = Workloads.FreePort();
        (await g.Apply($$"""
            group: {{g.Name}}
            autostart: true
            apps:
              - name: ticker
                command: {{Workloads.Service}}
                args: [ticker, --tcp, "{{port}}"]
                ready: { tcp: "{{port}}" }
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();

        // A follower sees a live event as it happens.
        var followed = await FollowUntil(g, "checkpoint.taken", () => g.Run("checkpoint", g.Name));
        Assert.Equal(g.Name, followed.GetProperty("group").GetString());
        Assert.Equal("manual", followed.GetProperty("fields").GetProperty("trigger").GetString());
        var beforeRestart = await g.Events();

        // The agent stops (and with it the group), and starts again: the group comes back by itself.
        await fx.Agent.StopAsync();
        await fx.Agent.StartAsync();
        await g.WaitUntil(async () => (await g.Status()).Prop("availability")?.Str("state") == "running", "the autostart group to run");
        Assert.Equal(["ticker"], (await g.Members()).Select(m => m.App));

        var events = await g.Events();
        Assert.Equal(beforeRestart.Select(e => (e.Seq, e.Type, e.Message)), events.Take(beforeRestart.Count).Select(e => (e.Seq, e.Type, e.Message)));
        Assert.Contains(events, e => e.Type == "policy.applied");
        Assert.Contains(events, e => e.Type == "checkpoint.taken" && e.Field("trigger") == "manual");
        var autostart = events.Single(e => e.Type == "group.starting" && e.Field("why") == "autostart");
        Assert.True(autostart.Seq > beforeRestart.Max(e => e.Seq), "the numbering went back after the restart");
        Assert.Equal(events.Select(e => e.Seq).Order(), events.Select(e => e.Seq));
    }

    /// <summary>
    /// Issue 10, item 1: kill -9 of the agent (or SIGTERM of one that runs with --keep-groups, as
    /// an upgrade or a service restart would), then a restart on the same state directory. The
    /// group runs on throughout (its counters go on while no agent runs); the restarted agent
    /// takes it up (the same processes, no fresh start although it is an autostart group) and
    /// supervises it where it was: its checkpoints go on, none taken before the crash is lost,
    /// and a crash of a member is recovered from a checkpoint taken after the restart.
    /// </summary>
    [Theory]
    [InlineData("kill")]
    [InlineData("sigterm --keep-groups")]
    public async Task AgentKilledAndStartedAgain_GroupRunsOnAndIsTakenUp_CheckpointsAndRecoveryGoOn(string how)
    {
        var graceful = how != "kill";
        if (graceful)
        {
            await fx.Agent.StopAsync();
            await fx.Agent.StartAsync("--keep-groups");
        }
        string[] tags = ["server count", "worker count", "client count"];
        await using var g = fx.Group("taken-up", output);
        var port = Workloads.FreePort();
        (await g.Apply($$"""
            group: {{g.Name}}
            autostart: true
            checkpoints:
              interval: 1s
              retention: 50
            recovery:
              action: restore
              maxAttempts: 5
              window: 10m
            {{Workloads.ServiceApps(port)}}
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var start = await g.Mark();
        await g.WaitForEvents("checkpoint.taken", start, 2);
        var before = await g.Members();
        Assert.Equal(3, before.Count);
        var checkpointsBefore = await CheckpointIds(g);
        var mark = await g.Mark();

        if (graceful)
        {
            await fx.Agent.StopAsync();
        }
        else
        {
            await fx.Agent.KillAsync();
        }
        // No agent: the group runs on.
        foreach (var tag in tags)
        {
            await g.WaitForCounts(tag, 3, g.Log.Length);
        }

        await fx.Agent.StartAsync();
        var adopted = await g.WaitForEvent("group.adopted", mark);
        Assert.Equal("3", adopted.Field("processes"));
        await g.WaitForEvent("supervision.resumed", mark);
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
        var events = await g.Events(mark);
        Assert.DoesNotContain(events, e => e.Type is "group.starting" or "fault.detected" or "checkpoint.deleted" or "member.unprotected");
        Assert.Equal(before.Select(m => (m.Pid, m.HostPid, m.App)), (await g.Members()).Select(m => (m.Pid, m.HostPid, m.App)));
        Assert.Empty(checkpointsBefore.Except(await CheckpointIds(g)));

        // Supervision goes on where it was: checkpoints, then a crash recovered from a new one.
        var resumed = await g.Mark();
        var taken = await g.WaitForEvents("checkpoint.taken", resumed, 2);
        var victim = (await g.Members()).Single(m => m.App == "worker");
        await g.Kill9(victim.HostPid);
        var fault = await g.WaitForEvent("fault.detected", resumed);
        Assert.Equal("worker", fault.Field("app"));
        var recovered = await g.WaitForEvent("recovery.finished", fault.Seq);
        var checkpoint = recovered.Field("checkpointId") ?? throw g.Failure($"recovery restored no checkpoint: {recovered}");
        Assert.True(string.CompareOrdinal(checkpoint, taken[0].Field("checkpointId")) >= 0,
            $"recovery restored {checkpoint}, older than {taken[0].Field("checkpointId")} taken after the agent restart");
        var offset = await g.StdoutOffset(checkpoint);
        foreach (var tag in tags)
        {
            var at = Continuity.ValueAt(g.Log, tag, offset);
            await g.WaitUntil(() => Task.FromResult(Continuity.AssertRestoredFrom(g.Log, tag, offset, at).Count >= 3),
                $"3 \"{tag}\" lines after the restore of {checkpoint}");
        }
        var after = await g.Members();
        Assert.Equal(before.Select(m => (m.Pid, m.App)), after.Select(m => (m.Pid, m.App)));
        await g.Verify(after, "service-server", "service-worker", "service-client");
        Assert.Empty(checkpointsBefore.Except(await CheckpointIds(g)));
    }

    private static async Task<List<string>> CheckpointIds(SupervisedGroup g) =>
        (await g.Run("images", "list", g.Name)).Ok().Json.GetProperty("checkpoints").EnumerateArray()
            .Select(c => c.GetProperty("id").GetString()!).ToList();

    /// <summary>Runs hactl events GROUP --follow --json, does <paramref name="act"/>, and returns the first event of <paramref name="type"/> it prints.</summary>
    private async Task<JsonElement> FollowUntil(SupervisedGroup g, string type, Func<Task<HactlResult>> act)
    {
        var psi = new ProcessStartInfo(Repo.Hactl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "events", g.Name, "--follow", "--json", "--agent", fx.Agent.Address })
        {
            psi.ArgumentList.Add(arg);
        }

        using var follower = Process.Start(psi)!;
        ProcessSweeper.RegisterDotnetChild(follower.Id);
        try
        {
            var mark = await g.Mark();
            (await act()).Ok();
            using var deadline = new CancellationTokenSource(Timeouts.Wait);
            while (await follower.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
            {
                using var doc = JsonDocument.Parse(line);
                var e = doc.RootElement;
                if (e.GetProperty("type").GetString() == type && e.GetProperty("seq").GetInt64() > mark)
                {
                    return e.Clone();
                }
            }
            throw g.Failure($"hactl events --follow ended without a {type} event: {await follower.StandardError.ReadToEndAsync()}");
        }
        finally
        {
            // Ctrl-C is how a follower ends: quietly, with exit code 0.
            Native.Kill(follower.Id, SigInt);
            await follower.WaitForExitAsync(new CancellationTokenSource(Timeouts.Cleanup).Token);
            Assert.Equal(0, follower.ExitCode);
        }
    }
}
