using System.Globalization;
using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 3: one member of a group is stopped (SIGSTOP). A checkpoint fails at once,
/// naming it, and the other members are not frozen while it waits for the stopped one (the
/// frozen time is read from the checkpoint.failed event). Status shows the member as stopped,
/// and once it runs again checkpoints work again.
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

    private static async Task<string?> StateOf(SupervisedGroup g, GroupProcess member) =>
        (await g.Status()).Array("members").Single(m => m.Long("hostPid") == member.HostPid).Str("state");

    private static void Signal(string signal, int hostPid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", hostPid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }
}
