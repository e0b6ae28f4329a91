using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 9, "Process state that is still missed": each program below broke in a checkpoint,
// kill -9 and restore cycle. Each runs two rounds of checkpoint, kill -9 and restore; after
// each restore the counters must continue exactly and the workload must verify its own state
// (VERIFY OK), which is what each workload's header comment describes.
[Trait("Category", "Integration")]
public sealed class ProcessStateWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public ProcessStateWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// <list type="bullet">
    /// <item>dlopen: a program that loads and unloads libraries all the time (a checkpoint may find
    /// a thread inside the dynamic loader, holding its lock) comes back and goes on: the library it
    /// held is intact, and unloads and loads again.</item>
    /// <item>timers: POSIX timers of every kind (a signal to the process, to one thread, a thread per
    /// expiry, none; periodic, one-shot, never armed) come back under their ids, with their settings
    /// and what was left of them, and go on firing.</item>
    /// <item>memflags: a 32 GiB MAP_NORESERVE mapping and memory given MADV_DONTFORK,
    /// MADV_WIPEONFORK, MADV_DONTDUMP, mlock, MADV_HUGEPAGE and MADV_NOHUGEPAGE come back with
    /// their contents and flags: a child forked after the restore gets what fork gave it before.</item>
    /// <item>ipc: SysV shared memory (attached, detached, marked for removal), a semaphore set, a
    /// message queue and POSIX message queues come back under their ids and names with their
    /// contents, and the threads waiting in semop, msgrcv and mq_receive go on waiting.</item>
    /// <item>cancel: threads canceled all the time, deferred and asynchronous, and signals pending
    /// in a thread: every cancel takes effect and every pending signal is delivered.</item>
    /// </list>
    /// </summary>
    [Theory, Trait("Category", "Integration")]
    [InlineData("dlopen", "wl_dlopen")]
    [InlineData("timers", "wl_timers")]
    [InlineData("memflags", "wl_memflags")]
    [InlineData("ipc", "wl_ipc")]
    [InlineData("cancel", "wl_cancel")]
    public async Task Workload_TwoRoundsOfKillRestore_VerifiesItself(string role, string workload)
    {
        await using var g = _fx.OpenGroup(role, _out);
        string[] tags = ["count"], roles = [role];
        var launched = await g.Launch(role, Repo.Workload(workload));
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            Assert.Equal(launched.Pid, Assert.Single(ck.Members).Pid);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(launched.Pid, Assert.Single(after).Pid);
        }
    }

    /// <summary>
    /// memflags, checkpoints back to back: a checkpoint within a second of the last one takes the
    /// mappings' flags from that one's capture when nothing shows a change, instead of reading
    /// /proc/self/smaps again (docs/architecture.md, "A coordinated checkpoint"). Restored from the
    /// second of two checkpoints, every region has its flags; flags changed in between, by madvise
    /// through libc and by a new MAP_NORESERVE mapping, are in the checkpoint taken right after.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task Memflags_CheckpointsBackToBack_KeepFlagsAndSeeTheirChanges()
    {
        await using var g = _fx.OpenGroup("memflags", _out);
        string[] tags = ["count"], roles = ["memflags"];
        await g.Launch("memflags", Repo.Workload("wl_memflags"));

        // The first one bare (no status calls around it), so that the second follows within the second.
        await g.WaitForCounts("count", 3, 0);
        (await g.Run("checkpoint", g.Name)).Ok();
        var carried = await g.Checkpoint(tags, members: 1);
        await g.KillMembers(carried.Members);
        await g.RestoreAndVerify(carried, tags, roles);

        (await g.Run("checkpoint", g.Name)).Ok();
        await g.SignalMembersUsr2();
        await g.WaitUntil(() => g.OutputContains("memflags changed"), "\"memflags changed\" after SIGUSR2");
        var changed = await g.Checkpoint(tags, members: 1);
        await g.KillMembers(changed.Members);
        await g.RestoreAndVerify(changed, tags, roles);
        Assert.True(g.OutputContains("VERIFY OK memflags regions=9 big_gib=32 changed=1"),
            "the restored process must verify the changed flags (late's dc, late_big's nr)");
    }

    /// <summary>
    /// hugefill: anonymous memory that the image's runs fill in whole 2 MiB blocks comes back in
    /// huge pages where the kernel's THP mode is "madvise" and would give it none on its own
    /// (docs/architecture.md, "A restore", step 4), without the mapping gaining MADV_HUGEPAGE;
    /// memory advised MADV_NOHUGEPAGE stays in small pages. With THP "always" or "never" the kernel
    /// decides alone, and only contents, flags and NOHUGEPAGE are checked.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task Hugefill_RestoredInHugePagesWhereThpIsMadvise_FlagsAsTheyWere()
    {
        await using var g = _fx.OpenGroup("hugefill", _out);
        string[] tags = ["count"], roles = ["hugefill"];
        await g.Launch("hugefill", Repo.Workload("wl_hugefill"));
        var ck = await g.Checkpoint(tags, members: 1);
        await g.KillMembers(ck.Members);
        long mark = g.Log.Length;
        await g.RestoreAndVerify(ck, tags, roles);

        var line = g.Log.Verified("hugefill", mark).Last();
        var kb = System.Text.RegularExpressions.Regex.Match(line, @"plain_huge_kb=(\d+) nohuge_huge_kb=(\d+)");
        Assert.True(kb.Success, line);
        Assert.Equal("0", kb.Groups[2].Value);
        if (File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[madvise]", StringComparison.Ordinal))
        {
            Assert.Equal("8192", kb.Groups[1].Value);
        }
    }
}
