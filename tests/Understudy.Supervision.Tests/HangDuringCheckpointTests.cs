using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 3: a hang detected by a health check while a checkpoint is in flight aborts
/// that checkpoint at once (the group is thawed and recovered), rather than after the
/// checkpoint's phase times out. The member's capture stalls (UNDERSTUDY_FAULT=stall-write), so
/// the scheduled checkpoint can never finish and the frozen application stops answering.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class HangDuringCheckpointTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task HangDetectedDuringACheckpoint_AbortsIt_AndTheGroupIsRecovered()
    {
        await using var g = fx.Group("hangcp", output);
        var port = Workloads.FreePort();
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints:
              interval: 1s
            recovery: { action: restart, maxAttempts: 3, window: 10m }
            apps:
              - name: api
                command: {{Workloads.Service}}
                args: [api, --tcp, "{{port}}"]
                env: { UNDERSTUDY_FAULT: stall-write }
                ready: { tcp: "{{port}}" }
                health:
                  - http: http://127.0.0.1:{{port}}/health
                    interval: 300ms
                    timeout: 500ms
                    failureThreshold: 3
            """)).Ok();
        var mark = await g.Mark();
        (await g.Run("group", "start", g.Name)).Ok();

        // The scheduled checkpoint freezes the api and never finishes its capture: the health
        // check finds it hung, and the checkpoint is aborted then, not after CaptureTimeout.
        var fault = await g.WaitForEvent("fault.detected", mark);
        Assert.Equal("hang", fault.Field("kind"));
        var aborted = await g.WaitForEvent("checkpoint.failed", mark);
        Assert.Equal("scheduled", aborted.Field("trigger"));
        Assert.Contains("a hang was found", aborted.Field("reason"));
        Assert.Contains("failed its health check", aborted.Field("reason"));
        var recovered = await g.WaitForEvent("recovery.finished", fault.Seq);
        Assert.Contains(await g.Events(mark), e => e.Type == "recovery.started" && e.Seq < recovered.Seq);
        (await g.Run("stop", g.Name)).Ok();
        (await g.Run("group", "delete", g.Name)).Ok();
    }
}
