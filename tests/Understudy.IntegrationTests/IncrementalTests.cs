using System.Text.RegularExpressions;
using Understudy.Images;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 3, "What it must show": incremental checkpoints with real processes under every write
// tracker, the size of an incremental checkpoint of a 1 GiB process, the merged image against
// the chain it came from, and a kill -9 of the agent in the middle of a merge.

/// <summary>Item 1: ten rounds of checkpoint, kill -9 and restore under each tracker, memory verified each time.</summary>
[Trait("Category", "Integration")]
public sealed class IncrementalTrackerTests : IClassFixture<AgentKeepingEveryCheckpoint>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public IncrementalTrackerTests(AgentKeepingEveryCheckpoint fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public Task Memory256MiB_TenRounds_UffdTracker_IncrementalCheckpointKillRestore_MemoryVerifies() =>
        TenRounds("uffd", "uffd-wp-async");

    [Fact, Trait("Category", "Integration")]
    public Task Memory256MiB_TenRounds_MprotectTracker_IncrementalCheckpointKillRestore_MemoryVerifies() =>
        TenRounds("mprotect", "mprotect");

    [Fact, Trait("Category", "Integration")]
    public Task Memory256MiB_TenRounds_NoTracker_EveryCheckpointFull_KillRestore_MemoryVerifies() =>
        TenRounds("none", "none");

    // The second workload of item 1: its buffers are written only by read(2), recv(2) and
    // pread(2), and between checkpoints it maps new memory, grows a mapping with mremap and
    // moves the heap's end with sbrk; every byte is checked after each restore.
    [Fact, Trait("Category", "Integration")]
    public Task KernelWrites_TenRounds_UffdTracker_IncrementalCheckpointKillRestore_Verifies() =>
        TenRounds("uffd", "uffd-wp-async", KernelWrites);

    [Fact, Trait("Category", "Integration")]
    public Task KernelWrites_TenRounds_MprotectTracker_IncrementalCheckpointKillRestore_Verifies() =>
        TenRounds("mprotect", "mprotect", KernelWrites);

    [Fact, Trait("Category", "Integration")]
    public Task KernelWrites_TenRounds_NoTracker_EveryCheckpointFull_KillRestore_Verifies() =>
        TenRounds("none", "none", KernelWrites);

    private sealed record Workload(string App, string Role, Func<GroupSession, string[]> Command);

    private static readonly Workload Memory256 = new("memory", "memory", _ => [Repo.Workload("wl_memory"), "256"]);
    private static readonly Workload KernelWrites =
        new("kernel", "kernel", g => [Repo.Workload("wl_kernel_writes"), Path.Combine(g.Dir, "kernel-writes.data")]);

    private async Task TenRounds(string tracker, string reported, Workload? workload = null)
    {
        workload ??= Memory256;
        await using var g = _fx.OpenGroup($"inc-{workload.App}-{tracker}", _out);
        string[] tags = { "count" }, roles = { workload.Role };
        var env = tracker == "uffd" ? new Dictionary<string, string>() : new Dictionary<string, string> { ["UNDERSTUDY_TRACKER"] = tracker };
        var launched = await g.LaunchWithEnv(workload.App, env, workload.Command(g));
        Assert.Equal(reported, await Incremental.TrackerOf(g, launched.Pid));

        // Each round: a checkpoint, another one a moment later (incremental on the first where the
        // tracker allows), kill -9, and a restore of the second: from its chain, or from the merged
        // image if the background merge came first.
        var taken = new List<CheckpointTaken>();
        for (int round = 1; round <= 10; round++)
        {
            taken.Add(await g.Checkpoint(tags, members: 1));
            var ck = await g.Checkpoint(tags, members: 1);
            taken.Add(ck);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(launched.Pid, Assert.Single(after).Pid);
            Assert.Equal(reported, await Incremental.TrackerOf(g, launched.Pid));
        }

        var kinds = taken.Select(c => c.Kind).ToList();
        _out.WriteLine($"kinds: {string.Join(" ", kinds)}; bytes: {string.Join(" ", taken.Select(c => c.Bytes))}");
        Assert.Equal("full", kinds[0]);
        if (tracker == "none")
        {
            Assert.All(kinds, k => Assert.Equal("full", k));
        }
        else
        {
            // The second checkpoint of every round applies to the first; the policy may make one
            // full now and then (--full-every, --chain-limit).
            var restored = taken.Where((_, i) => i % 2 == 1).ToList();
            Assert.True(restored.Count(c => c.Kind == "incremental") >= 8,
                $"only {restored.Count(c => c.Kind == "incremental")} of the 10 restored checkpoints were incremental: {string.Join(" ", kinds)}");
            // Each increment is smaller than the full image it follows. (The workloads grow
            // between rounds, so the first full one is no yardstick for the last increments.)
            for (int i = 1; i < taken.Count; i++)
            {
                if (taken[i].Kind != "incremental")
                {
                    continue;
                }
                var full = taken.Take(i).Last(c => c.Kind == "full");
                Assert.True(taken[i].Bytes < full.Bytes,
                    $"incremental checkpoint {taken[i].Id} has {taken[i].Bytes} bytes, the full one {full.Id} before it {full.Bytes}");
            }
        }
        foreach (var id in await g.CheckpointIds())
        {
            var (bad, result) = await g.VerifyImage(id);
            Assert.False(bad, $"checkpoint {id} does not verify:\n{result}");
        }
        AssertProtectionsKept(g, taken);
    }

    // The workloads never change their protections after the first checkpoint: every image must
    // give each page the protection it had then. (The mprotect tracker's own read-only pages once
    // leaked into images where the kernel had merged them with a read-only neighbour.)
    private void AssertProtectionsKept(GroupSession g, List<CheckpointTaken> taken)
    {
        var store = new CheckpointStore(_fx.StateDir);
        VmaRecord[] VmasOf(string id) =>
            ProcessImage.ReadMeta(ImageFiles.Of(Path.Combine(g.CheckpointsDir, id), Assert.Single(store.LoadManifest(g.Name, id).Members)).Meta)
                .Vmas.ToArray();
        var first = VmasOf(taken[0].Id).Where(v => v.Prot.HasFlag(VmaProt.Write) && !v.Flags.HasFlag(VmaFlags.Shared)).ToList();
        foreach (var ck in taken.Skip(1))
        {
            foreach (var v in VmasOf(ck.Id).Where(v => !v.Prot.HasFlag(VmaProt.Write)))
            {
                var was = first.FirstOrDefault(w => w.Start < v.End && v.Start < w.End);
                Assert.True(was is null,
                    $"checkpoint {ck.Id} has {v.Start:x}-{v.End:x} {v.Path} read-only, writable ({was?.Start:x}-{was?.End:x}) in {taken[0].Id}");
            }
        }
    }
}

/// <summary>Item 2: a 1 GiB process that rewrote 5 % of its pages; measured in bytes.</summary>
[Trait("Category", "Integration")]
public sealed class IncrementalSizeTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public IncrementalSizeTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task OneGiB_FivePercentRewritten_IncrementalIsAtMostTenPercentOfFull()
    {
        await using var g = _fx.OpenGroup("gib", _out);
        string[] tags = { "count" }, roles = { "memory" };
        await g.Launch("memory", Repo.Workload("wl_dirty"), "1024", "5");
        await g.WaitUntil(() => g.OutputContains("memory ready"), "the workload filled its memory");

        // wl_dirty changes nothing until SIGUSR2, then rewrites exactly 5 % of its pages.
        var full = await g.Checkpoint(tags, members: 1, full: true);
        await g.SignalMembersUsr2();
        await g.WaitUntil(() => g.OutputContains("dirtied"), "5 % of the pages rewritten");
        var inc = await Incremental.CheckpointNow(g);
        double percentOfFull = 100.0 * inc.Bytes / full.Bytes;
        _out.WriteLine($"full {full.Bytes} bytes; incremental after 5 % of the pages were rewritten: {inc.Bytes} bytes = {percentOfFull:F2} % of the full one");

        Assert.Equal(("full", "incremental"), (full.Kind, inc.Kind));
        Assert.True(full.Bytes >= 1L << 30, $"a full checkpoint of 1 GiB of data has only {full.Bytes} bytes");
        Assert.True(inc.Bytes <= full.Bytes / 10, $"the incremental checkpoint is {percentOfFull:F2} % of the full one, more than 10 %");

        // And it restores: merged (or merged now) into a full image that verifies.
        await g.KillMembers(inc.Members);
        await g.RestoreAndVerify(inc, tags, roles);
    }
}

/// <summary>
/// Item 4 through a merge: a workload appends records to a file and keeps their count in
/// memory; restored from an incremental checkpoint (merged into a full image, FILE record
/// included), the file holds exactly the records its memory counts.
/// </summary>
[Trait("Category", "Integration")]
public sealed class IncrementalFileTests : IClassFixture<AgentFixture>
{
    // bash, without a single fork: records go to the file (O_APPEND), "count N" to stdout, and
    // read -t on a FIFO nobody writes is the sleep; bash picks descriptors above 10, clear of the
    // interceptor's own. On SIGUSR1 it checks, between two records, that the file holds exactly
    // "rec 1" .. "rec COUNT".
    private const string Script = """
        i=0 verify=0
        exec {rec}>>"$1" {slp}<>"$2"
        trap 'verify=1' USR1
        while :; do
          if [ $verify = 1 ]; then
            verify=0 ok=1
            mapfile -t recs < "$1"
            [ ${#recs[@]} -eq $i ] || ok=0
            for ((k = 0; k < ${#recs[@]}; k++)); do [ "${recs[k]}" = "rec $((k + 1))" ] || { ok=0; break; }; done
            if [ $ok = 1 ]; then echo "VERIFY OK files count=$i"; else echo "FAIL files: ${#recs[@]} records in the file for count $i"; fi
          fi
          i=$((i + 1))
          echo "rec $i" >&$rec
          echo "count $i"
          read -t 0.05 -u $slp _
        done
        """;

    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public IncrementalFileTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task FileAppender_RestoredFromAMergedIncrementalCheckpoint_FileHoldsExactlyTheCountedRecords()
    {
        await using var g = _fx.OpenGroup("files", _out);
        string[] tags = { "count" }, roles = { "files" };
        var records = Path.Combine(_fx.TempDir, $"{g.Name}.records");
        var fifo = Path.Combine(_fx.TempDir, $"{g.Name}.fifo");
        Incremental.MakeFifo(fifo);
        await g.Launch("files", "/bin/bash", "-c", Script, "bash", records, fifo);

        await g.Checkpoint(tags, members: 1);
        var inc = await g.Checkpoint(tags, members: 1);
        Assert.Equal("incremental", inc.Kind);
        // More records after the checkpoint; the restore must take them back out.
        await g.WaitForCounts("count", 10, inc.StdoutPos);
        long linesBefore = File.ReadAllLines(records).Length;
        Assert.True(linesBefore > inc.CountsAt["count"], $"{linesBefore} records, checkpoint at {inc.CountsAt["count"]}");

        await g.KillMembers(inc.Members);
        await g.RestoreAndVerify(inc, tags, roles);

        var store = new CheckpointStore(_fx.StateDir);
        var manifest = store.Verify(g.Name, inc.Id);
        Assert.NotNull(manifest.Merged);
        var image = ProcessImage.ReadMeta(ImageFiles.Of(Path.Combine(g.CheckpointsDir, inc.Id), manifest.Members[0]).Meta);
        var file = Assert.Single(image.Files, f => f.Path == records);
        Assert.Equal((ulong)Enumerable.Range(1, (int)inc.CountsAt["count"]).Sum(n => $"rec {n}\n".Length), file.Size);
        _out.WriteLine($"{linesBefore} records before the kill, {inc.CountsAt["count"]} at the checkpoint; the merged image holds the file's {file.Size} bytes");
    }
}

/// <summary>
/// An agent that leaves incremental checkpoints unmerged (restores read their chains), and takes
/// them incremental for as long a chain as a test asks.
/// </summary>
public sealed class ManualMergeAgentFixture : IAsyncLifetime
{
    public AgentFixture Agent { get; } = new(new Dictionary<string, string>(), "--no-background-merge", "--full-every", "20", "--chain-limit", "1000");

    public Task InitializeAsync() => Agent.InitializeAsync();

    public Task DisposeAsync() => Agent.DisposeAsync();
}

/// <summary>Item 3: the merged image is the chain applied, byte for byte; the chain itself restores.</summary>
[Trait("Category", "Integration")]
public sealed class MergeEqualsChainTests : IClassFixture<ManualMergeAgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public MergeEqualsChainTests(ManualMergeAgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx.Agent, output);

    [Fact, Trait("Category", "Integration")]
    public async Task MergeOfAChain_IsTheImageTheChainDescribes_ByteForByte_AndTheChainRestoresUnmerged()
    {
        await using var g = _fx.OpenGroup("chain", _out);
        string[] tags = { "count" }, roles = { "memory" };
        await g.Launch("memory", Repo.Workload("wl_memory"), "64");
        var taken = new List<CheckpointTaken>();
        for (int i = 0; i < 3; i++)
        {
            taken.Add(await g.Checkpoint(tags, members: 1));
        }

        Assert.Equal(["full", "incremental", "incremental"], taken.Select(c => c.Kind));

        // The chain as it was written.
        var copy = Path.Combine(_fx.TempDir, "chain-copy");
        foreach (var ck in taken)
        {
            Incremental.CopyDirectory(Path.Combine(g.CheckpointsDir, ck.Id), Path.Combine(copy, ck.Id));
        }

        // The restore reads the chain as it is: nothing merges it.
        var store = new CheckpointStore(_fx.StateDir);
        await g.KillMembers(taken[2].Members);
        await g.RestoreAndVerify(taken[2], tags, roles);
        Assert.Equal("incremental", store.Verify(g.Name, taken[2].Id).Kind);
        Assert.Null(store.LoadManifest(g.Name, taken[1].Id).Merged);

        // Merging 2 onto 1 and 3 onto the result gives, page by page, the chain applied by a model
        // independent of the streaming merge, and the newest image's mappings.
        var chain = taken.Select(ck => Incremental.MemberFiles(Path.Combine(copy, ck.Id))).ToList();
        var merged2 = new ImageFiles(Path.Combine(copy, "m2.meta"), Path.Combine(copy, "m2.pages"));
        var merged3 = new ImageFiles(Path.Combine(copy, "m3.meta"), Path.Combine(copy, "m3.pages"));
        ImageMerger.Merge(chain[0], chain[1], merged2);
        ImageMerger.Merge(merged2, chain[2], merged3);
        var expected = Incremental.ReadPages(chain[0]);
        expected = Incremental.Apply(expected, chain[1]);
        expected = Incremental.Apply(expected, chain[2]);
        var actual = Incremental.ReadPages(merged3);
        Assert.Equal(expected.Count, actual.Count);
        foreach (var (address, page) in expected)
        {
            Assert.True(actual.TryGetValue(address, out var got) && page.AsSpan().SequenceEqual(got), $"page 0x{address:x} differs from the chain's");
        }

        Assert.Equal(ProcessImage.ReadMeta(chain[2].Meta).Vmas.Select(v => (v.Start, v.End, v.Kind, v.Path)),
            ProcessImage.ReadMeta(merged3.Meta).Vmas.Select(v => (v.Start, v.End, v.Kind, v.Path)));

        // And byte for byte the same files when merged again: merges are deterministic.
        var again3 = new ImageFiles(Path.Combine(copy, "a3.meta"), Path.Combine(copy, "a3.pages"));
        ImageMerger.Merge(merged2, chain[2], again3);
        Assert.True(File.ReadAllBytes(again3.Meta).AsSpan().SequenceEqual(File.ReadAllBytes(merged3.Meta)), "the merged .meta differs");
        Assert.True(Incremental.SameContents(again3.Pages, merged3.Pages), "the merged .pages differs");
        _out.WriteLine($"checkpoint {taken[2].Id}: chain {taken.Sum(c => c.Bytes)} bytes, {expected.Count} pages equal");
    }
}

/// <summary>An agent whose merges hold between writing the merged image and replacing the manifest.</summary>
public sealed class SlowMergeAgentFixture : IAsyncLifetime
{
    public AgentFixture Agent { get; } = new(new Dictionary<string, string> { ["UNDERSTUDY_AGENT_FAULT"] = "slow-merge:300" });

    public Task InitializeAsync() => Agent.InitializeAsync();

    public Task DisposeAsync() => Agent.DisposeAsync();
}

/// <summary>Item 3: a kill -9 of the agent during a merge loses nothing.</summary>
[Trait("Category", "Integration")]
public sealed class AgentKilledDuringMergeTests : IClassFixture<SlowMergeAgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public AgentKilledDuringMergeTests(SlowMergeAgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx.Agent, output);

    [Fact, Trait("Category", "Integration")]
    public async Task AgentKilledMidMerge_ChainStillValid_NextAgentMergesAndRestores()
    {
        await using var g = _fx.OpenGroup("killmerge", _out);
        string[] tags = { "count" }, roles = { "memory" };
        await g.Launch("memory", Repo.Workload("wl_memory"), "64");
        await g.Checkpoint(tags, members: 1);
        var inc = await g.Checkpoint(tags, members: 1);
        Assert.Equal("incremental", inc.Kind);

        // The merge of the incremental checkpoint holds with its merged image written.
        await g.WaitUntil(() => _fx.AgentLogText().Contains($"merge of checkpoint {inc.Id} of group {g.Name} holds"), "the merge to hold before its manifest");
        var dir = Path.Combine(g.CheckpointsDir, inc.Id);
        Assert.Contains(Directory.EnumerateFiles(dir), f => f.EndsWith(".merged.pages", StringComparison.Ordinal));
        await _fx.KillAgentAsync();

        // Nothing committed was lost: the chain verifies as it was.
        var store = new CheckpointStore(_fx.StateDir);
        Assert.Equal("incremental", store.Verify(g.Name, inc.Id).Kind);

        // The next agent removes the half-done merge, merges again, and the checkpoint restores.
        await g.KillMembers(inc.Members);
        await _fx.StartAgentAsync();
        await g.WaitUntil(() => store.LoadManifest(g.Name, inc.Id).Merged is not null
                                && !Directory.EnumerateFiles(dir).Any(f => Regex.IsMatch(Path.GetFileName(f), @"^\d+\.(meta|pages)$|\.tmp$")),
            $"checkpoint {inc.Id} to be merged by the next agent");
        Assert.Equal("full", store.Verify(g.Name, inc.Id).Kind);
        await g.RestoreAndVerify(inc, tags, roles);
    }
}

/// <summary>Helpers of the incremental tests: trackers, workload counters, and image pages.</summary>
internal static class Incremental
{
    /// <summary>The tracker `hactl status --json` reports for the member with <paramref name="pid"/>.</summary>
    public static async Task<string?> TrackerOf(GroupSession g, int pid)
    {
        var status = (await g.Run("status", g.Name)).Ok().Json;
        return status.Array("groups").SelectMany(x => x.Array("members")).FirstOrDefault(m => m.Long("pid") == pid).Str("tracker");
    }

    private static readonly Regex Updates = new(@"^count \d+ updates (\d+)$");

    /// <summary>wl_memory's update counter on the last line before <paramref name="offset"/> of output.log.</summary>
    public static long UpdatesAt(GroupSession g, long offset) =>
        g.Log.Lines(0, offset).Select(l => Updates.Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).LastOrDefault();

    public static long LastUpdates(GroupSession g) => UpdatesAt(g, long.MaxValue);

    /// <summary>
    /// `hactl checkpoint` at once, without GroupSession.Checkpoint's waits for members and
    /// counts (the group is known to run): the instant follows the call closely.
    /// </summary>
    public static async Task<CheckpointTaken> CheckpointNow(GroupSession g)
    {
        var reply = (await g.Run("checkpoint", g.Name)).Ok().Json;
        var id = reply.Str("id") ?? throw g.Failure("checkpoint --json has no id");
        long pos = await g.StdoutPosAt(id);
        long count = g.Log.LastCount("count", pos) ?? throw g.Failure($"no \"count N\" line before offset {pos}");
        return new CheckpointTaken(id, reply.Str("kind") ?? "", reply.Long("bytes") ?? 0, pos,
            new Dictionary<string, long> { ["count"] = count }, await g.Members());
    }

    public static void MakeFifo(string path)
    {
        if (MkFifo(path, 0x180) != 0) // 0600
        {
            throw new IOException($"mkfifo {path} failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(string path, uint mode);

    public static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }

    /// <summary>The one member's image files of a checkpoint directory.</summary>
    public static ImageFiles MemberFiles(string checkpointDir)
    {
        var manifest = CheckpointManifest.Load(Path.Combine(checkpointDir, CheckpointManifest.FileName));
        return ImageFiles.Of(checkpointDir, Assert.Single(manifest.Members));
    }

    /// <summary>The pages with data of an image, by address.</summary>
    public static Dictionary<ulong, byte[]> ReadPages(ImageFiles files)
    {
        var image = ProcessImage.ReadMeta(files.Meta);
        var pages = new Dictionary<ulong, byte[]>();
        foreach (var run in image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole))
        {
            var data = PageRunReader.ReadPages(files.Pages, run);   // raw or LZ4, checked
            for (ulong i = 0; i < run.NPages; i++)
            {
                pages[run.Addr + i * 4096] = data.AsSpan((int)(i * 4096), 4096).ToArray();
            }
        }
        return pages;
    }

    /// <summary>us_image.h's rules for an incremental image, page by page.</summary>
    public static Dictionary<ulong, byte[]> Apply(Dictionary<ulong, byte[]> basePages, ImageFiles increment)
    {
        var inc = ProcessImage.ReadMeta(increment.Meta);
        var written = ReadPages(increment);
        var result = new Dictionary<ulong, byte[]>();
        foreach (var vma in inc.Vmas)
        {
            for (ulong addr = vma.Start; addr < vma.End; addr += 4096)
            {
                var run = vma.Runs.FirstOrDefault(r => r.Addr <= addr && addr < r.End);
                if (run is { IsHole: false })
                {
                    result[addr] = written[addr];
                }
                else if (run is null && !vma.Flags.HasFlag(VmaFlags.Complete) && basePages.TryGetValue(addr, out var page))
                {
                    result[addr] = page;
                }
            }
        }
        return result;
    }

    public static bool SameContents(string a, string b)
    {
        using var x = File.OpenRead(a);
        using var y = File.OpenRead(b);
        if (x.Length != y.Length)
        {
            return false;
        }

        var bx = new byte[1 << 20];
        var by = new byte[1 << 20];
        while (true)
        {
            int n = x.Read(bx);
            if (n == 0)
            {
                return true;
            }

            y.ReadExactly(by, 0, n);
            if (!bx.AsSpan(0, n).SequenceEqual(by.AsSpan(0, n)))
            {
                return false;
            }
        }
    }
}

/// <summary>An agent that deletes no checkpoint (--retention 0): the ten-round tests check every round's images.</summary>
public sealed class AgentKeepingEveryCheckpoint() : AgentFixture(new Dictionary<string, string>(), "--retention", "0");
