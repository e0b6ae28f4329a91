using Understudy.Images;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 10: "Restore straight from the chain, each page from the newest image that holds it."
// The agent never merges in the background here (ManualMergeAgentFixture, which also lets chains
// grow long), so every restore reads a chain of a full image and increments as they were written;
// nothing may merge on the way.

/// <summary>Restores from an unmerged chain: the workloads verify their own memory.</summary>
[Trait("Category", "Integration")]
public sealed class ChainRestoreTests : IClassFixture<ManualMergeAgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public ChainRestoreTests(ManualMergeAgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx.Agent, output);

    // Pages rewritten, freed (hole runs), unmapped and mapped again, made read-only and writable
    // again, a private file mapping's pages dropped back to the file's, and a child forked after
    // the full checkpoint, whose first increment applies to its parent's image. Without
    // CAP_SYS_ADMIN, /proc/self/pagemap hides swap types, and the capture tells the file's
    // pages from swapped ones by reading them.
    [Theory, Trait("Category", "Integration")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Layers_FullThenFiveIncrements_RestoredFromTheChainTwiceInARow_ThenOnceMoreOnTop(bool withoutSysAdmin)
    {
        await using var g = _fx.OpenGroup(withoutSysAdmin ? "chain-layers-nocap" : "chain-layers", _out);
        string[] parentTags = ["count"], bothTags = ["count", "child_count"], both = ["layers", "layers-child"];
        if (withoutSysAdmin)
        {
            await g.Launch("layers", "/usr/bin/setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--", Repo.Workload("wl_layers"), g.Dir);
        }
        else
        {
            await g.Launch("layers", Repo.Workload("wl_layers"), g.Dir);
        }
        var taken = new List<CheckpointTaken> { await g.Checkpoint(parentTags, members: 1) };
        for (int step = 1; step <= 5; step++)
        {
            await Step(g, step, forked: step >= 3);
            taken.Add(await g.Checkpoint(step >= 3 ? bothTags : parentTags, members: step >= 3 ? 2 : 1));
        }
        Assert.Equal(["full", "incremental", "incremental", "incremental", "incremental", "incremental"], taken.Select(c => c.Kind));
        var store = new CheckpointStore(_fx.StateDir);
        var newest = taken[^1];
        var child = store.LoadManifest(g.Name, taken[3].Id).Members.Single(m => m.Vpid != taken[0].Members[0].Pid);
        Assert.True(child.IsIncremental, $"the child's first image is {child.Kind}");
        Assert.Equal(taken[0].Members[0].Pid, child.BaseImageVpid);

        for (int round = 1; round <= 2; round++)
        {
            await g.KillMembers(await g.Members());
            await RestoreFromChain(g, store, newest, bothTags, both, images: 6);
        }

        // Once more on top of the restored chain: an increment on it, and a restore of that.
        await Step(g, 6, forked: true);
        var top = await g.Checkpoint(bothTags, members: 2);
        Assert.Equal("incremental", top.Kind);
        await g.KillMembers(await g.Members());
        await RestoreFromChain(g, store, top, bothTags, both, images: 7);
    }

    // wl_dirty rewrites 5 % of its pages at each SIGUSR2.
    [Fact, Trait("Category", "Integration")]
    public async Task Dirty_FullThenThreeIncrements_RestoredFromTheChain()
    {
        await using var g = _fx.OpenGroup("chain-dirty", _out);
        string[] tags = ["count"], roles = ["memory"];
        await g.Launch("dirty", Repo.Workload("wl_dirty"), "64", "5");
        var taken = new List<CheckpointTaken> { await g.Checkpoint(tags, members: 1) };
        for (int i = 0; i < 3; i++)
        {
            long mark = g.Log.Length;
            await g.SignalMembersUsr2();
            await g.WaitUntil(() => g.Log.Lines(mark).Any(l => l.StartsWith("dirtied ", StringComparison.Ordinal)), "wl_dirty to rewrite its pages");
            taken.Add(await g.Checkpoint(tags, members: 1));
        }
        Assert.Equal(["full", "incremental", "incremental", "incremental"], taken.Select(c => c.Kind));
        await g.KillMembers(taken[^1].Members);
        await RestoreFromChain(g, new CheckpointStore(_fx.StateDir), taken[^1], tags, roles, images: 4);
    }

    // wl_memflags: a 32 GiB MAP_NORESERVE mapping, mlocked, huge-page and fork-flagged memory.
    [Fact, Trait("Category", "Integration")]
    public async Task Memflags_FullThenTwoIncrements_RestoredFromTheChain()
    {
        await using var g = _fx.OpenGroup("chain-memflags", _out);
        string[] tags = ["count"], roles = ["memflags"];
        await g.Launch("memflags", Repo.Workload("wl_memflags"));
        var taken = new List<CheckpointTaken>();
        for (int i = 0; i < 3; i++)
        {
            taken.Add(await g.Checkpoint(tags, members: 1));
        }
        Assert.Equal(["full", "incremental", "incremental"], taken.Select(c => c.Kind));
        await g.KillMembers(taken[^1].Members);
        await RestoreFromChain(g, new CheckpointStore(_fx.StateDir), taken[^1], tags, roles, images: 3);
    }

    // "A corrupt base image refuses the restore with one line and the running group is untouched."
    [Fact, Trait("Category", "Integration")]
    public async Task CorruptBaseImage_RestoreOfTheIncrementRefusedWithOneLine_RunningGroupUntouched()
    {
        await using var g = _fx.OpenGroup("chain-corrupt", _out);
        string[] tags = ["count"], roles = ["memory"];
        await g.Launch("memory", Repo.Workload("wl_memory"), "16");
        var full = await g.Checkpoint(tags, members: 1);
        var inc = await g.Checkpoint(tags, members: 1);
        Assert.Equal(("full", "incremental"), (full.Kind, inc.Kind));

        var store = new CheckpointStore(_fx.StateDir);
        // One byte of the base's page data, which the increment does not rewrite.
        var baseImage = ImageFiles.Of(Path.Combine(g.CheckpointsDir, full.Id), Assert.Single(store.LoadManifest(g.Name, full.Id).Members));
        var run = ProcessImage.ReadMeta(baseImage.Meta).Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole).MaxBy(r => r.StoredLen)!;
        using (var pages = new FileStream(baseImage.Pages, FileMode.Open, FileAccess.ReadWrite))
        {
            pages.Position = (long)run.PagesOff;
            int b = pages.ReadByte();
            pages.Position = (long)run.PagesOff;
            pages.WriteByte((byte)(b ^ 0x5a));
        }
        var running = await g.Members();

        var refused = await g.Run("restore", g.Name, "--checkpoint", inc.Id, "--force");
        refused.FailsWithOneLine();
        Assert.Contains($"base checkpoint {full.Id} does not verify", refused.Stderr);
        Assert.Equal(running.Select(m => (m.Pid, m.HostPid)), (await g.Members()).Select(m => (m.Pid, m.HostPid)));
        await g.Verify(running, roles);
    }

    // "Bad or missing chain input must fail the restore with one line before anything is mapped":
    // us-init, given a plan that does not describe a chain, makes no process.
    [Fact, Trait("Category", "Integration")]
    public async Task UsInit_GivenABadRestorePlan_FailsWithOneLine_BeforeAnyProcessIsMade()
    {
        await using var g = _fx.OpenGroup("chain-plan", _out);
        string[] tags = ["count"];
        await g.Launch("memory", Repo.Workload("wl_memory"), "8");
        var full = await g.Checkpoint(tags, members: 1);
        var inc = await g.Checkpoint(tags, members: 1);
        int vpid = inc.Members[0].Pid;
        const string header = "understudy-restore-plan 1\n";
        string first = $"image {inc.Id} {vpid} {vpid}.meta {vpid}.pages\n";
        var plans = new (string Reason, string? Plan)[]
        {
            ("cannot open the restore plan", null),
            ("not a restore plan", "process 2 1\n"),
            ("the chain of images does not end in a full image", header + $"process {vpid} 1\n" + first),
            ("bad checkpoint id or image file name", header + $"process {vpid} 2\n" + first + $"image {full.Id} {vpid} ../{full.Id}/{vpid}.meta {vpid}.pages\n"),
            ("an image of the chain is not the one the plan names", header + $"process {vpid} 2\n" + first + $"image {full.Id} {vpid + 1} {vpid}.meta {vpid}.pages\n"),
            ("the plan ends within a chain", header + $"process {vpid} 2\n" + first),
            ("output-was PATH (absolute)", header + "output-was output.log\n" + $"process {vpid} 1\n" + first),
            ("output-was PATH (absolute)", header + "output-was /a/output.log\noutput-was /b/output.log\n" + $"process {vpid} 1\n" + first),
        };
        foreach (var (reason, plan) in plans)
        {
            var work = Path.Combine(_fx.TempDir, "plan-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(work);
            string planPath = Path.Combine(work, "restore.plan"), log = Path.Combine(work, "native.log");
            if (plan is not null)
            {
                File.WriteAllText(planPath, plan);
            }
            var psi = new System.Diagnostics.ProcessStartInfo(Path.Combine(Repo.Root, "out", "bin", "us-init"))
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[]
                     {
                         "--group", "plan", "--coord", Path.Combine(work, "none.sock"), "--lib", Path.Combine(Repo.Root, "out", "lib", "libunderstudy.so"),
                         "--log", log, "--output", Path.Combine(work, "output.log"), "--restore", Path.Combine(g.CheckpointsDir, inc.Id),
                         "--plan", planPath, "--restorer", Path.Combine(Repo.Root, "out", "bin", "us-restorer"),
                     })
            {
                psi.ArgumentList.Add(arg);
            }
            using var init = System.Diagnostics.Process.Start(psi)!;
            string said = await init.StandardOutput.ReadToEndAsync().WaitAsync(Timeouts.Wait);
            await init.WaitForExitAsync().WaitAsync(Timeouts.Wait);
            Assert.Contains("ERROR restore failed", said);
            var failures = File.ReadAllLines(log).Where(l => l.Contains("restore-failed", StringComparison.Ordinal)).ToList();
            Assert.True(failures.Count == 1 && failures[0].Contains($"reason=bad-restore-plan", StringComparison.Ordinal) && failures[0].Contains(reason, StringComparison.Ordinal),
                $"plan for \"{reason}\": {string.Join(" | ", failures)}");
            Assert.DoesNotContain(File.ReadAllLines(log), l => l.Contains("restored processes", StringComparison.Ordinal));
        }
    }

    /// <summary>SIGUSR2 to the members, and their "stepped N" lines.</summary>
    private static async Task Step(GroupSession g, int step, bool forked)
    {
        long mark = g.Log.Length;
        await g.SignalMembersUsr2();
        foreach (var role in forked ? new[] { "layers", "layers-child" } : ["layers"])
        {
            await g.WaitUntil(() => g.Log.Lines(mark).Contains($"stepped {step} {role}"), $"{role} to take step {step}");
        }
    }

    /// <summary>
    /// Restores <paramref name="ck"/>, still incremental, and checks that the agent read the chain
    /// as it was: nothing merged it, before or during the restore.
    /// </summary>
    private async Task RestoreFromChain(GroupSession g, CheckpointStore store, CheckpointTaken ck, string[] tags, string[] roles, int images)
    {
        long logMark = _fx.AgentLogText().Length;
        await g.RestoreAndVerify(ck, tags, roles);
        var log = _fx.AgentLogText()[(int)logMark..];
        Assert.Equal("incremental", store.LoadManifest(g.Name, ck.Id).Kind);
        Assert.DoesNotContain($"Merge of checkpoint", log);
        Assert.Contains($"Restore of group {g.Name} from checkpoint {ck.Id} started: {ck.Members.Count} members, incremental (chains of up to {images} images, not merged)", log);
    }
}
