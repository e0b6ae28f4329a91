using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 9, "Process state that is still missed": each program below broke in a checkpoint,
// kill -9 and restore cycle. Each test runs two rounds of checkpoint, kill -9 and restore;
// after each restore the counters must continue exactly and the workload must verify its own
// state (VERIFY OK), which is what each workload's header comment describes.

/// <summary>Two rounds of checkpoint, kill -9 and restore of a group of one process.</summary>
internal static class TwoRounds
{
    public static async Task Run(GroupSession g, Member launched, string[] tags, string[] roles)
    {
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            Assert.Equal(launched.Pid, Assert.Single(ck.Members).Pid);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(launched.Pid, Assert.Single(after).Pid);
        }
    }
}

[Trait("Category", "Integration")]
public sealed class DlopenWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public DlopenWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// A program that loads and unloads libraries all the time (a checkpoint usually finds a
    /// thread inside the dynamic loader, holding its lock) comes back and goes on: the library
    /// it held is intact and unloads and loads again after the restore.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task LoadsAndUnloadsLibraries_KillRestore_HeldLibraryIntactAndUnloads()
    {
        await using var g = _fx.OpenGroup("dlopen", _out);
        var launched = await g.Launch("dlopen", Repo.Workload("wl_dlopen"));
        await TwoRounds.Run(g, launched, ["count"], ["dlopen"]);
    }
}

[Trait("Category", "Integration")]
public sealed class TimersWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public TimersWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// POSIX timers of every kind (a signal to the process, a signal to one thread, a thread per
    /// expiry, none; periodic, one-shot, never armed) come back under their ids, with their
    /// settings and what was left of them, and go on firing: the workload checks each.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task PosixTimers_KillRestore_SameIdsSettingsAndTimeLeft()
    {
        await using var g = _fx.OpenGroup("timers", _out);
        var launched = await g.Launch("timers", Repo.Workload("wl_timers"));
        await TwoRounds.Run(g, launched, ["count"], ["timers"]);
    }
}

[Trait("Category", "Integration")]
public sealed class MemoryFlagsWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public MemoryFlagsWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// A 32 GiB MAP_NORESERVE mapping (more than the machine's memory) and memory given
    /// MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, mlock, MADV_HUGEPAGE and MADV_NOHUGEPAGE come
    /// back with their contents and flags: a child forked after the restore gets what fork gave it
    /// before.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task NoreserveAndAdvisedMemory_KillRestore_MappedAndAdvisedAsBefore()
    {
        await using var g = _fx.OpenGroup("memflags", _out);
        var launched = await g.Launch("memflags", Repo.Workload("wl_memflags"));
        await TwoRounds.Run(g, launched, ["count"], ["memflags"]);
    }
}

[Trait("Category", "Integration")]
public sealed class IpcWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public IpcWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// SysV shared memory (attached, detached, marked for removal), a semaphore set, a message
    /// queue, and POSIX message queues come back under their ids and names with their contents,
    /// and the threads waiting in semop, msgrcv and mq_receive go on waiting, each woken by its
    /// token afterwards.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task SysvAndPosixIpc_KillRestore_SameIdsContentsAndWaiters()
    {
        await using var g = _fx.OpenGroup("ipc", _out);
        var launched = await g.Launch("ipc", Repo.Workload("wl_ipc"));
        await TwoRounds.Run(g, launched, ["count"], ["ipc"]);
    }
}

[Trait("Category", "Integration")]
public sealed class CancellationWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public CancellationWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Threads canceled all the time, deferred (in read, pthread_cond_wait, nanosleep, poll) and
    /// asynchronous, and long-lived ones canceled after each restore: every cancel takes effect,
    /// cleanup handlers run and every join returns (a cancel in flight at the checkpoint was lost
    /// before, and its joiner waited forever).
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CanceledThreads_KillRestore_EveryCancelTakesEffect()
    {
        await using var g = _fx.OpenGroup("cancel", _out);
        var launched = await g.Launch("cancel", Repo.Workload("wl_cancel"));
        await TwoRounds.Run(g, launched, ["count"], ["cancel"]);
    }
}
