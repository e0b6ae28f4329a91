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
