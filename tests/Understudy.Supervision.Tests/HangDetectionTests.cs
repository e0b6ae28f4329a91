using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 3: a member that deadlocks (alive, but no longer answering its HTTP health
/// check) is detected past the failure threshold and the whole group is recovered, from a
/// checkpoint taken before the hang, so the hang does not come back.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class HangDetectionTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task DeadlockedMember_IsDetectedByItsHealthCheck_AndTheGroupIsRecovered()
    {
        await using var g = fx.Group("hang", output);
        Directory.CreateDirectory(g.WorkDir);
        var port = Workloads.FreePort();
        var hangFile = Path.Combine(g.WorkDir, "hang-now");
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints:
              interval: 500ms
              retention: 30
            recovery: { action: restore, maxAttempts: 3, window: 10m }
            apps:
              - name: api
                command: {{Workloads.Service}}
                args: [api, --tcp, "{{port}}", --hang-file, {{hangFile}}]
                ready: { tcp: "{{port}}" }
                health:
                  - http: http://127.0.0.1:{{port}}/health
                    interval: 300ms
                    timeout: 500ms
                    failureThreshold: 3
                  - alive: true
                    interval: 300ms
              - name: ticker
                command: {{Workloads.Service}}
                args: [ticker]
                after: [api]
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var before = await g.Members();
        var mark = await g.Mark();
        await g.WaitForEvents("checkpoint.taken", mark, 2);

        // The api deadlocks: it is still alive, but answers nothing any more.
        await File.WriteAllTextAsync(hangFile, "");
        var fault = await g.WaitForEvent("fault.detected", mark);
        Assert.Equal("hang", fault.Field("kind"));
        Assert.Equal("api", fault.Field("app"));
        Assert.Contains("failed its health check http", fault.Message);
        Assert.Contains("3 times in a row", fault.Message);
        Assert.Contains(g.Log.Lines(), l => l == "api hang");
        // It was detected by its health check, not by an exit: the process was alive.
        Assert.DoesNotContain(await g.Events(mark), e => e.Type == "member.exited" && e.Seq < fault.Seq);

        var recovered = await g.WaitForEvent("recovery.finished", fault.Seq);
        var checkpoint = recovered.Field("checkpointId") ?? throw g.Failure($"no checkpoint was restored: {recovered}");
        var offset = await g.StdoutOffset(checkpoint);
        foreach (var tag in new[] { "api count", "ticker count" })
        {
            var at = Continuity.ValueAt(g.Log, tag, offset);
            await g.WaitUntil(() => Task.FromResult(Continuity.AssertRestoredFrom(g.Log, tag, offset, at).Count >= 5),
                $"5 \"{tag}\" lines after the restore of {checkpoint}");
        }

        // Both applications came back as the same processes, and the api answers again.
        var after = await g.Members();
        Assert.Equal(before.Select(m => (m.Pid, m.App)), after.Select(m => (m.Pid, m.App)));
        await g.WaitUntil(async () =>
        {
            var api = (await g.Show()).Array("apps").Single(a => a.Str("name") == "api");
            return api.Array("health").All(h => h.Str("state") == "passing");
        }, "the api's health checks to pass again");
        await g.Verify(after, "service-api", "service-ticker");
        Assert.Single(await g.Events(mark), e => e.Type == "recovery.started");
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
    }
}
