using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 9, "What it must show", item 1: a checkpoint is invisible to the application. The
// workload's threads block in each of the calls that a signal handler interrupts (poll, ppoll,
// select, pselect, epoll_wait, epoll_pwait, epoll_pwait2, nanosleep, clock_nanosleep, usleep,
// sleep, sem_wait, sem_timedwait, sigtimedwait, sigwaitinfo, pause, sigsuspend, a futex wait,
// poll through syscall() and as a bare syscall instruction). Each thread checks every return
// itself: no EINTR, no timeout that ends early, no wake-up without a cause.

[Trait("Category", "Integration")]
public sealed class TransparencyTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public TransparencyTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public Task BlockedCalls_TenCheckpointsThenKillRestore_NoneReturnsEarlyOrWithEintr() => TenCheckpointsKillRestore("uffd");

    // The mprotect tracker protects memory again at each checkpoint: the buffer of a read
    // blocked meanwhile must stay writable, or the data would arrive as EFAULT.
    [Fact, Trait("Category", "Integration")]
    public Task BlockedCalls_MprotectTracker_TenCheckpointsThenKillRestore_NoneReturnsEarlyOrWithEintr() => TenCheckpointsKillRestore("mprotect");

    private async Task TenCheckpointsKillRestore(string tracker)
    {
        await using var g = _fx.OpenGroup($"blocking-{tracker}", _out);
        string[] tags = ["count"], roles = ["blocking"];
        await g.LaunchWithEnv("blocking", new Dictionary<string, string> { ["UNDERSTUDY_TRACKER"] = tracker }, Repo.Workload("wl_blocking"));
        await g.WaitUntil(() => g.OutputContains("blocking ready"), "the probe threads started");

        var taken = new List<CheckpointTaken>();
        for (int round = 1; round <= 10; round++)
        {
            taken.Add(await g.Checkpoint(tags, members: 1, full: round == 6));
            // Let the calls go on for a while between checkpoints, so that the next one finds
            // them at other points of their 250 ms timeouts.
            await Task.Delay(70 * round % 300);
        }
        var members = await g.Members();
        await g.Verify(members, roles);
        Assert.Contains(taken, c => c.Kind == "full");
        Assert.Contains(taken, c => c.Kind == "incremental");

        var last = taken[^1];
        await g.KillMembers(last.Members);
        var restored = await g.RestoreAndVerify(last, tags, roles);

        // And checkpoints of the restored process are invisible too.
        for (int round = 1; round <= 3; round++)
        {
            await g.Checkpoint(tags, members: 1);
        }
        await g.Verify(restored, roles);
        g.AssertNoFail();
    }
}
