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
