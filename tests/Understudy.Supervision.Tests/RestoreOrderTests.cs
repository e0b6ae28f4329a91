using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, items 1 and 2 together: a group recovered by a restore comes back in its launch
/// order, like a start. Its restored applications are resumed one by one, each only once the one
/// before met its readiness condition; a readiness that does not come in time fails the recovery.
/// The server is ready when a file exists and its port answers (so that the worker, which
/// connects at once, never starts before it listens); the test creates the file only once it has
/// seen the restored server run while the worker (next in the launch order) and the client are
/// still frozen.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class RestoreOrderTests(SupervisionFixture fx, ITestOutputHelper output)
{
    // Listed out of order on purpose: the launch order (server, worker, client) comes from "after".
    // The client has no readiness condition: it is resumed right after the worker is ready.
    private static string Policy(string group, int port, string serverReady, string workerReady, string serverTimeout, int maxAttempts) => $$"""
        group: {{group}}
        checkpoints: { interval: 400ms, retention: 10 }
        recovery: { action: restore, maxAttempts: {{maxAttempts}}, window: 10m }
        apps:
          - name: client
            command: {{Workloads.Service}}
            args: [client, --connect, "{{port}}"]
            after: [worker]
          - name: worker
            command: {{Workloads.Service}}
            args: [worker, --connect, "{{port}}", --ready-file, {{workerReady}}]
            after: [server]
            ready: { file: {{workerReady}}, timeout: 20s }
          - name: server
            command: {{Workloads.Service}}
            args: [server, --tcp, "{{port}}"]
            ready:
              command: [/bin/bash, -c, "test -e {{serverReady}} && exec 3<>/dev/tcp/127.0.0.1/{{port}}"]
              timeout: {{serverTimeout}}
        """;

    /// <summary>
    /// Starts the group (its server counts as ready at once), waits for checkpoints, takes the
    /// server's readiness away, and kills the worker with kill -9.
    /// </summary>
    /// <returns>the mark before the checkpoints, the members before the kill, and the offset of output.log right after the kill</returns>
    private static async Task<(long Mark, List<GroupProcess> Before, long AfterKill)> StartAndKillWorker(
        SupervisedGroup g, string serverReady, string serverTimeout, int maxAttempts)
    {
        Directory.CreateDirectory(g.WorkDir);
        await File.WriteAllTextAsync(serverReady, "");
        var workerReady = Path.Combine(g.WorkDir, "worker.ready");
        (await g.Apply(Policy(g.Name, Workloads.FreePort(), serverReady, workerReady, serverTimeout, maxAttempts))).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var mark = await g.Mark();
        await g.WaitForEvents("checkpoint.taken", mark, 2);

        // From now on the server is ready only once its file exists again.
        File.Delete(serverReady);
        var before = await g.Members();
        Assert.Equal(["client", "server", "worker"], before.Select(m => m.App).Order());
        await g.Kill9(before.Single(m => m.App == "worker").HostPid);
        // The killed worker has printed its last line: a "worker count" line from here on is a restored worker's.
        return (mark, before, g.Log.Length);
    }

    [Fact]
    public async Task AfterKillMinus9_TheRestoredAppsResumeInLaunchOrder_EachOnlyOnceTheOneBeforeIsReady()
    {
        await using var g = fx.Group("resume", output);
        var serverReady = Path.Combine(g.WorkDir, "server.ready");
        var (mark, before, afterKill) = await StartAndKillWorker(g, serverReady, serverTimeout: "2m", maxAttempts: 3);

        var fault = await g.WaitForEvent("fault.detected", mark);
        Assert.Equal("worker", fault.Field("app"));
        await g.WaitForEvent("app.resumed", fault.Seq, e => e.Field("app") == "server");
        // The restore stopped the old group before it rebuilt it: a "server count" line from here
        // on is the restored server's, running while it waits for its readiness file.
        var serverResumed = g.Log.Length;
        await g.WaitForCounts("server count", 3, serverResumed);

        var held = await g.Events(fault.Seq);
        Assert.Equal(["server"], held.Where(e => e.Type == "app.resumed").Select(e => e.Field("app")));
        Assert.DoesNotContain(held, e => e.Type is "app.ready" or "recovery.finished" or "recovery.failed");
        Assert.Empty(g.Log.Counts("worker count", afterKill));
        Assert.Equal("recovering", (await g.Status()).Prop("availability")?.Str("state"));

        // The server is ready now: the others follow, in launch order.
        await File.WriteAllTextAsync(serverReady, "");
        var finished = await g.WaitForEvent("recovery.finished", fault.Seq);
        var checkpoint = finished.Field("checkpointId") ?? throw g.Failure($"the recovery restored no checkpoint: {finished}");

        var events = await g.Events(fault.Seq);
        long Seq(string type, string app) =>
            events.Single(e => e.Type == type && e.Field("app") == app).Seq;
        Assert.True(Seq("app.resumed", "server") < Seq("app.ready", "server"));
        Assert.True(Seq("app.ready", "server") < Seq("app.resumed", "worker"), "the worker was resumed before the server was ready");
        Assert.True(Seq("app.resumed", "worker") < Seq("app.ready", "worker"));
        Assert.True(Seq("app.ready", "worker") < Seq("app.resumed", "client"), "the client was resumed before the worker was ready");
        Assert.True(Seq("app.ready", "client") < finished.Seq);
        Assert.StartsWith($"command /bin/bash -c test -e {serverReady} ",
            events.Single(e => e.Type == "app.ready" && e.Field("app") == "server").Field("condition"));
        Assert.Equal("registered", events.Single(e => e.Type == "app.ready" && e.Field("app") == "client").Field("condition"));

        // The worker came back from the checkpoint, not afresh, and is answered by the restored
        // server on the connection it had (both ends are in the group: TCP repair carries it
        // over), without connecting again.
        var offset = await g.StdoutOffset(checkpoint);
        var at = Continuity.ValueAt(g.Log, "worker count", offset);
        await g.WaitForCounts("worker count", 3, afterKill);
        Assert.Equal(at + 1, g.Log.Counts("worker count", afterKill)[0]);
        Continuity.AssertRestoredFrom(g.Log, "worker count", offset, at);
        await Pongs.WaitForMoreOnTheSameConnection(g.Log, "worker", afterKill, g.WaitUntil);
        Assert.DoesNotContain(g.Log.Lines(), l => l.StartsWith("FAIL", StringComparison.Ordinal));

        // The same processes run on, and so do the periodic checkpoints.
        Assert.Equal(before.Select(m => (m.Pid, m.App)), (await g.Members()).Select(m => (m.Pid, m.App)));
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
        await g.WaitForEvent("checkpoint.taken", finished.Seq);
    }

    [Fact]
    public async Task RestoredAppNotReadyInTime_FailsTheRecovery_AndTheAppsAfterItAreNeverResumed()
    {
        await using var g = fx.Group("unready", output);
        var serverReady = Path.Combine(g.WorkDir, "server.ready");
        // One recovery allowed: the failed one is the last.
        var (mark, _, afterKill) = await StartAndKillWorker(g, serverReady, serverTimeout: "1500ms", maxAttempts: 1);

        var failed = await g.WaitForEvent("group.failed", mark);
        var events = await g.Events(mark);
        var recoveryFailed = events.Single(e => e.Type == "recovery.failed");
        Assert.Contains($"server was not ready within 1500 ms: command /bin/bash -c test -e {serverReady}", recoveryFailed.Message);
        Assert.Equal(["server"], events.Where(e => e.Type == "app.resumed").Select(e => e.Field("app")));
        Assert.DoesNotContain(events, e => e.Type is "app.ready" or "recovery.finished");
        Assert.Contains("crash loop", failed.Field("reason"));
        Assert.Contains("server was not ready within 1500 ms", failed.Field("reason"));
        Assert.Empty(g.Log.Counts("worker count", afterKill));

        var status = await g.Status();
        Assert.Equal("failed", status.Prop("availability")?.Str("state"));
        Assert.Contains("server was not ready", status.Prop("availability")?.Str("reason"));
        Assert.Empty(status.Array("members"));
    }
}
