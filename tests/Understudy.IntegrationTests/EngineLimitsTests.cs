using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// No fixed table of the engine cuts a process's state off: a process with thousands of
/// threads, descriptors or shared mappings, or with a long command line, comes back whole
/// after two rounds of checkpoint, kill -9 and restore, and checks so itself (wl_limits).
/// </summary>
public sealed class EngineLimitsTests : IClassFixture<AgentFixture>
{
    private static readonly string[] Roles = ["limits"];

    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public EngineLimitsTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>2,000 threads: every one frozen, captured and re-created with its tid and TLS.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TwoThousandThreads_KillRestoreTwice_EveryThreadAnswers()
    {
        await using var g = _fx.OpenGroup("threads2k", _out);
        await RunTwoRounds(g, Repo.Workload("wl_limits"), "threads", "2000");
    }

    /// <summary>10,000 descriptors, each its own open file at its own offset.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TenThousandDescriptors_KillRestoreTwice_EveryOneBack()
    {
        await using var g = _fx.OpenGroup("fds10k", _out);
        await RunTwoRounds(g, Repo.Workload("wl_limits"), "fds", "10000", _fx.TempDir);
    }

    /// <summary>1,000 shared anonymous mappings, each its own object with its own contents.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task ThousandSharedMappings_KillRestoreTwice_ContentsBack()
    {
        await using var g = _fx.OpenGroup("shm1k", _out);
        await RunTwoRounds(g, Repo.Workload("wl_limits"), "shm", "1000");
    }

    /// <summary>A 1 MiB command line (16 arguments of 64 KiB) is launched whole and comes back whole.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task OneMebibyteCommandLine_LaunchKillRestoreTwice_ArgumentsWhole()
    {
        await using var g = _fx.OpenGroup("args1m", _out);
        var command = new List<string> { Repo.Workload("wl_limits"), "args", "16" };
        command.AddRange(Enumerable.Range(0, 16).Select(i => new string((char)('a' + i % 26), 64 * 1024)));
        await RunTwoRounds(g, command.ToArray());
    }

    /// <summary>
    /// A process with so many mappings that a restore could not make them again (the restorer
    /// needs a few of its own within vm.max_map_count) fails the checkpoint with one line that
    /// names the limit, instead of writing an image that can never be restored; it runs on.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task MappingsUpToMaxMapCount_CheckpointFailsWithOneLine_ProcessRunsOn()
    {
        await using var g = _fx.OpenGroup("maps", _out);
        await g.Launch("limits", Repo.Workload("wl_limits"), "maps", "8");
        await g.WaitForCounts("limits", 3, 0);

        var r = (await g.Run("checkpoint", g.Name)).FailsWithOneLine();

        Assert.Contains("vm.max_map_count", r.StderrLines[0]);
        Assert.Empty(await g.CheckpointIds());
        await g.WaitForCounts("limits", 3, g.Log.Length);
    }

    private static async Task RunTwoRounds(GroupSession g, params string[] command)
    {
        var launched = await g.Launch("limits", command);
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(Roles, members: 1);
            Assert.Contains(ck.Members, m => m.Pid == launched.Pid);
            await g.KillMembers(ck.Members);
            await g.RestoreAndVerify(ck, Roles, Roles);
        }
    }
}
