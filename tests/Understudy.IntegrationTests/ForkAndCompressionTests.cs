using Understudy.Images;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 3, "What to build": after fork, parent and child both continue incrementally against
// the pre-fork image; and optional LZ4 compression of page data.

/// <summary>A process forks between two checkpoints: both images of the second are increments on the parent's first.</summary>
[Trait("Category", "Integration")]
public sealed class IncrementalForkTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public IncrementalForkTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public Task Fork_UffdTracker_ParentAndChildIncrementalOnThePreForkImage_RestoreVerifies() => ForkBetweenCheckpoints("uffd");

    [Fact, Trait("Category", "Integration")]
    public Task Fork_MprotectTracker_ParentAndChildIncrementalOnThePreForkImage_RestoreVerifies() => ForkBetweenCheckpoints("mprotect");

    private async Task ForkBetweenCheckpoints(string tracker)
    {
        await using var g = _fx.OpenGroup($"fork-{tracker}", _out);
        var env = tracker == "uffd" ? new Dictionary<string, string>() : new Dictionary<string, string> { ["UNDERSTUDY_TRACKER"] = tracker };
        var parent = await g.LaunchWithEnv("memory", env, Repo.Workload("wl_memory"), "128", "--fork-on-usr2");

        var full = await g.Checkpoint(["count"], members: 1, full: true);
        await g.SignalMembersUsr2();
        await g.WaitUntil(() => g.OutputContains("forked child"), "the workload forked");
        string[] tags = ["count", "ccount"], roles = ["memory", "memory-child"];
        var inc = await g.Checkpoint(tags, members: 2);

        _out.WriteLine($"full {full.Bytes} bytes; after the fork {inc.Kind}, {inc.Bytes} bytes");
        Assert.Equal("incremental", inc.Kind);
        // Increments hold only what was written since the full checkpoint: each loop of the
        // workload rewrites 64 pages. The child's image is on the parent's pre-fork one, so it
        // holds the parent's writes before the fork as well as its own. A full image of the
        // child (128 MiB) would exceed this bound however long the machine took between the
        // two checkpoints (the bound grows with the loops, not with the clock). One more loop
        // each, for a loop that wrote before it printed; 8 MiB of slack for the state
        // description, stacks and the version table.
        long parentLoops = inc.CountsAt["count"] - full.CountsAt["count"] + 1, childLoops = inc.CountsAt["ccount"] + 1;
        long bound = 64L * 4096 * (2 * parentLoops + childLoops) + (8L << 20);
        _out.WriteLine($"parent loops {parentLoops}, child loops {childLoops}: at most {bound} bytes of increments");
        Assert.True(inc.Bytes <= bound, $"the checkpoint after the fork has {inc.Bytes} bytes, more than the {bound} its increments can hold (the full one has {full.Bytes})");
        var manifest = new CheckpointStore(_fx.StateDir).LoadManifest(g.Name, inc.Id);
        Assert.Equal(2, manifest.Members.Count);
        var child = Assert.Single(manifest.Members, m => m.Vpid != parent.Pid);
        if (manifest.Merged is null)
        {
            // Not merged yet: the child's image applies to its parent's in the full checkpoint.
            Assert.All(manifest.Members, m => Assert.True(m.IsIncremental, $"vpid {m.Vpid} wrote a {m.Kind} image"));
            Assert.Equal((CheckpointId.Parse(full.Id), parent.Pid), (child.BaseSeq, child.BaseImageVpid));
        }
        _out.WriteLine(manifest.Merged is null ? "members: " + string.Join(", ", manifest.Members.Select(m => $"vpid {m.Vpid} {m.Kind} on {m.BaseSeq}/{m.BaseImageVpid}"))
                                               : "already merged when read");

        await g.KillMembers(inc.Members);
        await g.RestoreAndVerify(inc, tags, roles);
    }

    // A forked child inherited its parent's shared page where a forked image writer reports: when
    // the parent's writer was done before the child's began (the child captures slowly here), the
    // child's start cleared the parent's result, and the parent's checkpoint failed with "the
    // image writer died". A restored pair shares it the same way.
    [Fact, Trait("Category", "Integration")]
    public async Task ParentAndForkedChild_EachWriterReportsToItsOwnProcess_BeforeAndAfterARestore()
    {
        await using var g = _fx.OpenGroup("fork-writers", _out);
        var env = new Dictionary<string, string> { ["UNDERSTUDY_FAULT"] = "slow-capture-in-children" };
        await g.LaunchWithEnv("memory", env, Repo.Workload("wl_memory"), "16", "--fork-on-usr2");
        await g.Checkpoint(["count"], members: 1, full: true);   // the parent maps its result page
        await g.SignalMembersUsr2();
        await g.WaitUntil(() => g.OutputContains("forked child"), "the workload forked");
        string[] tags = ["count", "ccount"], roles = ["memory", "memory-child"];

        CheckpointTaken taken = null!;
        for (int round = 0; round < 2; round++)
        {
            taken = await g.Checkpoint(tags, members: 2, full: true);
        }
        await g.KillMembers(taken.Members);
        await g.RestoreAndVerify(taken, tags, roles);
        for (int round = 0; round < 2; round++)
        {
            taken = await g.Checkpoint(tags, members: 2, full: true);
        }
        await g.KillMembers(taken.Members);
        await g.RestoreAndVerify(taken, tags, roles);
    }
}

/// <summary>UNDERSTUDY_COMPRESS=lz4: page runs stored as LZ4 blocks, chains merged and restored.</summary>
[Trait("Category", "Integration")]
public sealed class CompressionTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public CompressionTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task Lz4_ThreeRoundsOfCheckpointKillRestore_MemoryVerifies_FullAndIncrementalImagesAreCompressed()
    {
        await using var g = _fx.OpenGroup("lz4", _out);
        string[] tags = ["count"], roles = ["memory"];
        var env = new Dictionary<string, string> { ["UNDERSTUDY_COMPRESS"] = "lz4" };
        await g.LaunchWithEnv("memory", env, Repo.Workload("wl_memory"), "128", "--compressible");

        var store = new CheckpointStore(_fx.StateDir);
        var kinds = new List<string>();
        for (int round = 1; round <= 3; round++)
        {
            var first = await g.Checkpoint(tags, members: 1);
            var second = await g.Checkpoint(tags, members: 1);
            kinds.AddRange([first.Kind, second.Kind]);
            foreach (var ck in (CheckpointTaken[])[first, second])
            {
                var (raw, stored, compressedRuns) = PageBytes(store, g, ck.Id);
                _out.WriteLine($"round {round}: {ck.Id} {ck.Kind}: {raw} bytes of pages stored in {stored} ({compressedRuns} LZ4 runs)");
                Assert.True(compressedRuns > 0, $"checkpoint {ck.Id} has no compressed run");
                Assert.True(stored < raw / 4, $"checkpoint {ck.Id}: {raw} bytes of repetitive pages stored in {stored}");
            }
            await g.KillMembers(second.Members);
            await g.RestoreAndVerify(second, tags, roles);
        }
        // Compressed images are small, so the chain limit (half the full one) makes the
        // policy take a full checkpoint now and then; the first increment always comes.
        _out.WriteLine($"kinds: {string.Join(" ", kinds)}");
        Assert.Equal(("full", "incremental"), (kinds[0], kinds[1]));
        foreach (var id in await g.CheckpointIds())
        {
            var (bad, result) = await g.VerifyImage(id);
            Assert.False(bad, $"checkpoint {id} does not verify:\n{result}");
        }
    }

    private static (ulong Raw, ulong Stored, int CompressedRuns) PageBytes(CheckpointStore store, GroupSession g, string id)
    {
        var manifest = store.LoadManifest(g.Name, id);
        var image = ProcessImage.ReadMeta(ImageFiles.Of(Path.Combine(g.CheckpointsDir, id), Assert.Single(manifest.Members)).Meta);
        var runs = image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole).ToList();
        return ((ulong)runs.Sum(r => (long)r.Bytes), (ulong)runs.Sum(r => (long)r.StoredLen), runs.Count(r => r.IsCompressed));
    }
}
