using System.Globalization;
using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 3: one member of a group is stopped (SIGSTOP). A checkpoint fails at once,
/// naming it, and the other members are not frozen while it waits for the stopped one (the
/// frozen time is read from the checkpoint.failed event). Status shows the member as stopped,
/// and once it runs again checkpoints work again. A member whose thread stays in one
/// uninterruptible wait (D) is refused the same way, while one that waits in D again and again
/// for short times, as a busy disk makes it, checkpoints as usual.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class StuckMemberTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task StoppedMember_FailsTheCheckpointAtOnce_NamingIt_AndNobodyIsFrozen()
    {
        await using var g = fx.Group("stuck", output);
        (await g.Run("launch", g.Name, "--app", "healthy", "--", Workloads.Service, "ticker")).Ok();
        (await g.Run("launch", g.Name, "--app", "stuck", "--", Workloads.Service, "ticker")).Ok();
        (await g.Run("checkpoint", g.Name)).Ok();
        var stuck = (await g.Members()).Single(m => m.App == "stuck");

        Signal("STOP", stuck.HostPid);
        try
        {
            await g.WaitUntil(async () => await StateOf(g, stuck) == "stopped", "status to show the stopped member as stopped");
            var mark = await g.Mark();

            var failed = (await g.Run("checkpoint", g.Name)).FailsWithOneLine();
            Assert.Contains("is stopped", failed.Stderr);
            Assert.Contains($"host pid {stuck.HostPid}", failed.Stderr);
            Assert.Contains($"kill -CONT {stuck.HostPid}", failed.Stderr);

            var aborted = await g.WaitForEvent("checkpoint.failed", mark);
            Assert.Contains("is stopped", aborted.Field("reason"));
            // Refused before PREPARE: the healthy member was never frozen.
            Assert.Equal(0.0, double.Parse(aborted.Field("frozenMs")!, CultureInfo.InvariantCulture));
            Assert.Equal("running", await StateOf(g, (await g.Members()).Single(m => m.App == "healthy")));
        }
        finally
        {
            Signal("CONT", stuck.HostPid);
        }

        await g.WaitUntil(async () => await StateOf(g, stuck) == "running", "status to show the member running again");
        (await g.Run("checkpoint", g.Name)).Ok();
    }

    [Fact]
    public async Task StoppedMainProcess_FailsItsAliveCheck_AndIsRecoveredAsAHang()
    {
        await using var g = fx.Group("stopped", output);
        (await g.Apply($$"""
            group: {{g.Name}}
            recovery: { action: restart, maxAttempts: 3, window: 10m }
            apps:
              - name: ticker
                command: {{Workloads.Service}}
                args: [ticker]
                health:
                  - alive: true
                    interval: 300ms
                    failureThreshold: 3
            """)).Ok();
        var mark = await g.Mark();
        (await g.Run("group", "start", g.Name)).Ok();
        var stopped = (await g.Members()).Single(m => m.App == "ticker");

        Signal("STOP", stopped.HostPid);
        var fault = await g.WaitForEvent("fault.detected", mark);
        Assert.Equal("hang", fault.Field("kind"));
        Assert.Contains("is stopped", fault.Message);
        await g.WaitForEvent("recovery.finished", fault.Seq);
        (await g.Run("stop", g.Name)).Ok();
        (await g.Run("group", "delete", g.Name)).Ok();
    }

    [Fact]
    public async Task MemberInOneLongUninterruptibleWait_FailsTheCheckpoint_NamingIt_AndNobodyIsFrozen()
    {
        await using var g = fx.Group("dstate", output);
        var stuckFile = Path.Combine(g.WorkDir, "stuck");
        Directory.CreateDirectory(g.WorkDir);
        (await g.Run("launch", g.Name, "--app", "healthy", "--", Workloads.Service, "ticker")).Ok();
        (await g.Run("launch", g.Name, "--app", "stuck", "--", Workloads.Service, "waiter", "--stuck-file", stuckFile)).Ok();
        (await g.Run("checkpoint", g.Name)).Ok();
        var stuck = (await g.Members()).Single(m => m.App == "stuck");

        await File.WriteAllTextAsync(stuckFile, "");
        try
        {
            // A vfork parent waits for its child in D, and its child waits for the file to go.
            await g.WaitUntil(async () => await StateOf(g, stuck) == "uninterruptible", "status to show the member as uninterruptible");
            var mark = await g.Mark();

            var failed = (await g.Run("checkpoint", g.Name)).FailsWithOneLine();
            Assert.Contains("uninterruptible wait", failed.Stderr);
            Assert.Contains($"host pid {stuck.HostPid}", failed.Stderr);

            var aborted = await g.WaitForEvent("checkpoint.failed", mark);
            Assert.Contains("uninterruptible wait", aborted.Field("reason"));
            Assert.Equal(0.0, double.Parse(aborted.Field("frozenMs")!, CultureInfo.InvariantCulture));
            Assert.Equal("running", await StateOf(g, (await g.Members()).Single(m => m.App == "healthy")));
        }
        finally
        {
            File.Delete(stuckFile);
        }

        await g.WaitUntil(async () => await StateOf(g, stuck) == "running", "status to show the member running again");
        (await g.Run("checkpoint", g.Name)).Ok();
    }

    [Fact]
    public async Task MemberInShortUninterruptibleWaitsOneAfterAnother_CheckpointsAsUsual()
    {
        await using var g = fx.Group("busydisk", output);
        (await g.Run("launch", g.Name, "--app", "busy", "--", Workloads.Service, "busy", "--disk-waits")).Ok();
        var busy = (await g.Members()).Single();

        // Its waiter thread is in D nearly all the time, in 20 ms waits: a look at any moment
        // finds D, but no wait lasts. Each checkpoint looks for a second and more.
        for (var round = 0; round < 4; round++)
        {
            (await g.Run("checkpoint", g.Name)).Ok();
            Assert.Equal("running", await StateOf(g, busy));
        }
    }

    private static async Task<string?> StateOf(SupervisedGroup g, GroupProcess member) =>
        (await g.Status()).Array("members").Single(m => m.Long("hostPid") == member.HostPid).Str("state");

    private static void Signal(string signal, int hostPid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", hostPid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
