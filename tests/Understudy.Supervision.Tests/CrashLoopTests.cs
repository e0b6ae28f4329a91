using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 4: a crash loop (an application that crashes again after every recovery)
/// stops after the configured number of attempts, and status shows why.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class CrashLoopTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task AppThatCrashesAfterEveryRestore_StopsAfterMaxAttempts_AndStatusSaysWhy()
    {
        await using var g = fx.Group("loop", output);
        Directory.CreateDirectory(g.WorkDir);
        var crashFile = Path.Combine(g.WorkDir, "crash");
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints: { interval: 300ms, retention: 5 }
            recovery:
              action: restore
              maxAttempts: 2
              window: 5m
            apps:
              - name: svc
                command: {{Workloads.Service}}
                args: [svc, --crash-file, {{crashFile}}]
              - name: helper
                command: {{Workloads.Service}}
                args: [helper]
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var mark = await g.Mark();
        await g.WaitForEvents("checkpoint.taken", mark, 1);

        // From now on svc aborts (SIGABRT) as soon as it runs, also after each restore.
        await File.WriteAllTextAsync(crashFile, "");
        var failed = await g.WaitForEvent("group.failed", mark);

        var events = await g.Events(mark);
        Assert.Equal([1, 2], events.Where(e => e.Type == "recovery.started").Select(e => int.Parse(e.Field("attempt")!)));
        // Three failures in all, each svc's SIGABRT: the crash of the running group, then the
        // restored svc crashing again, either while a recovery brought the group back (the
        // recovery failed) or just after (a new fault).
        var failures = events.Where(e => e.Type is "fault.detected" or "recovery.failed").ToList();
        Assert.Equal(3, failures.Count);
        Assert.All(failures, e => Assert.Contains("svc (pid 2) was killed by signal 6", e.Message));
        Assert.Equal("fault.detected", failures[0].Type);
        Assert.Contains("crash loop", failed.Field("reason"));

        var status = await g.Status();
        var availability = status.Prop("availability") ?? throw g.Failure("status shows no availability");
        Assert.Equal("failed", availability.Str("state"));
        var reason = availability.Str("reason") ?? "";
        Assert.Contains("more than recovery.maxAttempts 2", reason);
        Assert.Contains("svc", reason);
        Assert.Contains("signal 6", reason);
        Assert.Equal("stopped", status.Str("state"));
        Assert.Empty(status.Array("members"));
        var human = (await fx.Hactl.Run(["status", g.Name], json: false)).Ok();
        Assert.Contains("availability: failed", human.Stdout);
        Assert.Contains("crash loop", human.Stdout);

        // Once the cause is gone, an operator's start brings it back with a clean slate.
        File.Delete(crashFile);
        (await g.Run("group", "start", g.Name)).Ok();
        var running = (await g.Status()).Prop("availability");
        Assert.Equal("running", running?.Str("state"));
        Assert.Equal(0, running?.Long("recentRecoveries"));
        Assert.Equal(["helper", "svc"], (await g.Members()).Select(m => m.App).Order());
    }

    [Fact]
    public async Task AppThatCrashesWhileTheRestoreAwaitsItsReadiness_EachFailedRecoverySaysHowItDied_AndTheAppAfterItStaysFrozen()
    {
        await using var g = fx.Group("loopready", output);
        Directory.CreateDirectory(g.WorkDir);
        var crashFile = Path.Combine(g.WorkDir, "crash");
        var readyFile = Path.Combine(g.WorkDir, "svc.ready");
        await File.WriteAllTextAsync(readyFile, "");
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints: { interval: 300ms, retention: 5 }
            recovery: { action: restore, maxAttempts: 2, window: 5m }
            apps:
              - name: svc
                command: {{Workloads.Service}}
                args: [svc, --crash-file, {{crashFile}}]
                ready: { file: {{readyFile}}, timeout: 1m }
              - name: helper
                command: {{Workloads.Service}}
                args: [helper]
                after: [svc]
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var mark = await g.Mark();
        await g.WaitForEvents("checkpoint.taken", mark, 1);

        // A restored svc can no longer be ready, so every restore ends only when svc, resumed
        // first, aborts while its readiness is awaited: inside the recovery, never after it.
        File.Delete(readyFile);
        await File.WriteAllTextAsync(crashFile, "");
        var failed = await g.WaitForEvent("group.failed", mark);

        var events = await g.Events(mark);
        var failures = events.Where(e => e.Type is "fault.detected" or "recovery.failed").ToList();
        Assert.Equal(["fault.detected", "recovery.failed", "recovery.failed"], failures.Select(e => e.Type));
        Assert.All(failures, e => Assert.Contains("svc (pid 2) was killed by signal 6", e.Message));
        Assert.DoesNotContain(events, e => e.Type is "recovery.finished" or "app.ready");
        Assert.Equal(["svc", "svc"], events.Where(e => e.Type == "app.resumed").Select(e => e.Field("app")));
        Assert.Contains("crash loop", failed.Field("reason"));
        Assert.Contains("svc (pid 2) was killed by signal 6", failed.Field("reason"));

        var status = await g.Status();
        Assert.Equal("failed", status.Prop("availability")?.Str("state"));
        Assert.Contains("signal 6", status.Prop("availability")?.Str("reason"));
        Assert.Empty(status.Array("members"));
    }
}
