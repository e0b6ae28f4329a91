using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 1: three applications with dependencies (a server that must listen before a
/// worker starts, and a client after the worker) start in order; a readiness condition that
/// fails on the first one holds the others back.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class LaunchOrderTests(SupervisionFixture fx, ITestOutputHelper output)
{
    private static string Policy(string group, int port, string dir, int listenAfterMs, string serverTimeout) => $$"""
        group: {{group}}
        apps:
          - name: client
            command: {{Workloads.Service}}
            args: [client, --connect, "{{port}}", --ready-file, {{dir}}/client.ready]
            after: [worker]
            ready:
              command: [/bin/sh, -c, "test -e {{dir}}/client.ready"]
              timeout: 20s
          - name: server
            command: {{Workloads.Service}}
            args: [server, --tcp, "{{port}}", --listen-after, "{{listenAfterMs}}"]
            ready:
              tcp: 127.0.0.1:{{port}}
              timeout: {{serverTimeout}}
          - name: worker
            command: {{Workloads.Service}}
            args: [worker, --connect, "{{port}}", --ready-file, {{dir}}/worker.ready]
            after: server
            ready:
              file: {{dir}}/worker.ready
              timeout: 20s
        """;

    [Fact]
    public async Task ThreeDependentApps_StartInLaunchOrder_EachOnlyAfterTheOneBeforeIsReady()
    {
        await using var g = fx.Group("order", output);
        Directory.CreateDirectory(g.WorkDir);
        // The server listens only after 700 ms: a worker launched earlier would find nothing
        // listening, print FAIL and exit.
        (await g.Apply(Policy(g.Name, Workloads.FreePort(), g.WorkDir, listenAfterMs: 700, serverTimeout: "30s"))).Ok();
        var mark = await g.Mark();

        var started = (await g.Run("group", "start", g.Name)).Ok().Json;
        Assert.Equal("running", started.Prop("availability")?.Str("state"));

        var events = await g.Events(mark);
        long Seq(string type, string? app = null) =>
            events.Single(e => e.Type == type && (app is null || e.Field("app") == app)).Seq;
        Assert.True(Seq("member.launched", "server") < Seq("app.ready", "server"));
        Assert.True(Seq("app.ready", "server") < Seq("member.launched", "worker"), "the worker was launched before the server was ready");
        Assert.True(Seq("app.ready", "worker") < Seq("member.launched", "client"), "the client was launched before the worker was ready");
        Assert.True(Seq("app.ready", "client") < Seq("group.started"));
        Assert.Equal("server,worker,client", events.Single(e => e.Type == "group.started").Field("apps"));
        Assert.StartsWith("tcp 127.0.0.1:", events.Single(e => e.Type == "app.ready" && e.Field("app") == "server").Field("condition"));

        // The workloads themselves saw the order: each client found its server listening, and
        // the client's requests go through the worker's server.
        await g.WaitUntil(() => Task.FromResult(g.Log.Lines().Any(l => l.StartsWith("client count ") && !l.Contains(" pongs 0 "))), "a pong to the client");
        var lines = g.Log.Lines();
        Assert.DoesNotContain(lines, l => l.StartsWith("FAIL", StringComparison.Ordinal));
        Assert.True(lines.FindIndex(l => l.StartsWith("server listening")) < lines.FindIndex(l => l.StartsWith("worker started")));
        Assert.True(lines.FindIndex(l => l.StartsWith("worker started")) < lines.FindIndex(l => l.StartsWith("client started")));

        var members = await g.Members();
        Assert.Equal(["client", "server", "worker"], members.Select(m => m.App).Order());
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
    }

    [Fact]
    public async Task FirstAppNeverReady_TheOthersAreNeverLaunched_AndTheGroupIsMarkedFailed()
    {
        await using var g = fx.Group("held", output);
        Directory.CreateDirectory(g.WorkDir);
        var port = Workloads.FreePort();
        // The server would listen only after a minute; its readiness gives up after 1.5 s.
        (await g.Apply(Policy(g.Name, port, g.WorkDir, listenAfterMs: 60_000, serverTimeout: "1500ms"))).Ok();
        var mark = await g.Mark();

        var start = (await g.Run("group", "start", g.Name)).FailsWithOneLine();
        Assert.Contains("server was not ready within 1500 ms", start.Stderr);
        Assert.Contains($"tcp 127.0.0.1:{port}", start.Stderr);

        var events = await g.Events(mark);
        Assert.Equal(["server"], events.Where(e => e.Type == "member.launched").Select(e => e.Field("app")));
        Assert.DoesNotContain(events, e => e.Type == "app.ready");
        Assert.Contains(events, e => e.Type == "group.start-failed");
        Assert.DoesNotContain(g.Log.Lines(), l => l.StartsWith("worker ") || l.StartsWith("client "));

        var status = await g.Status();
        Assert.Equal("failed", status.Prop("availability")?.Str("state"));
        Assert.Contains("server was not ready", status.Prop("availability")?.Str("reason"));
        Assert.Empty(status.Array("members"));
        var server = int.Parse(events.Single(e => e.Type == "member.joined" && e.Field("app") == "server").Field("hostPid")!);
        Assert.False(Native.IsRunning(server), $"the server (host pid {server}) still runs after the failed start");
    }
}
