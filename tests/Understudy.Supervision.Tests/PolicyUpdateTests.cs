using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 5: a policy update applied to a running group changes its checkpoint interval
/// (and adds a health check) without restarting it, and the change is recorded as an event.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class PolicyUpdateTests(SupervisionFixture fx, ITestOutputHelper output)
{
    private static string Policy(string group, int port, string interval, string health) => $$"""
        group: {{group}}
        checkpoints:
          interval: {{interval}}
          retention: 50
        apps:
          - name: ticker
            command: {{Workloads.Service}}
            args: [ticker, --tcp, "{{port}}"]
            ready: { tcp: "{{port}}" }
        {{health}}
        """;

    [Fact]
    public async Task NewCheckpointIntervalAndHealthCheck_TakeEffectOnTheRunningGroup_WithoutARestart()
    {
        await using var g = fx.Group("update", output);
        var port = Workloads.FreePort();
        (await g.Apply(Policy(g.Name, port, "1h", ""))).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var before = await g.Members();
        var mark = await g.Mark();
        var logMark = g.Log.Length;
        Assert.Equal("1h", (await g.Show()).Prop("checkpoints")?.Str("interval"));

        var health = $"""
                health:
                  - http: http://127.0.0.1:{port}/
                    interval: 200ms
            """;
        var applied = (await g.Apply(Policy(g.Name, port, "300ms", health), "policy-v2.yaml")).Ok().Json;
        Assert.False(applied.Prop("created")?.GetBoolean());
        var changes = applied.Array("changes").Select(c => (c.Str("text"), c.Prop("live")?.GetBoolean())).ToList();
        Assert.Contains(("checkpoints.interval: 1h -> 300ms", true), changes);
        Assert.Contains(changes, c => c.Item1!.StartsWith("apps.ticker.health: none -> http http://127.0.0.1:") && c.Item2 == true);

        // The change is an event, and scheduled checkpoints follow it.
        var changed = await g.WaitForEvent("policy.changed", mark);
        Assert.Contains("checkpoints.interval: 1h -> 300ms", changed.Field("changes"));
        Assert.EndsWith("policy-v2.yaml", changed.Field("source"));
        var taken = await g.WaitForEvents("checkpoint.taken", changed.Seq, 3);
        Assert.All(taken, e => Assert.Equal("scheduled", e.Field("trigger")));

        var show = await g.Show();
        Assert.Equal("300ms", show.Prop("checkpoints")?.Str("interval"));
        await g.WaitUntil(async () =>
        {
            var check = (await g.Show()).Array("apps").Single().Array("health").SingleOrDefault();
            return check.ValueKind != System.Text.Json.JsonValueKind.Undefined && check.Str("state") == "passing";
        }, "the new health check to pass");

        // Not restarted: the same processes, nothing stopped or launched, the counter unbroken.
        Assert.Equal(before, await g.Members());
        var since = await g.Events(mark);
        Assert.DoesNotContain(since, e => e.Type is "group.stopped" or "group.starting" or "member.launched" or "member.exited" or "recovery.started");
        var counts = g.Log.Counts("ticker count", logMark);
        Assert.True(counts.Count >= 3);
        Assert.Equal(Enumerable.Range(0, counts.Count).Select(i => counts[0] + i), counts);
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
    }
}
