using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 2, "What it must show", items 1-5, each folded with item 6: every test runs
// checkpoint -> kill -9 -> restore twice, and checks after each restore that:
//   - every counter continues exactly from the checkpoint: the checkpoint image records
//     the offset of the members' stdout (output.log, O_APPEND), so the log up to that
//     offset is what had been printed at the checkpoint instant; the first value printed
//     after the restore must be the last one before that offset plus one, and the next
//     ones follow one by one (not from zero, not skipping, not repeating);
//   - status shows the same members with the same pids (as getpid() sees them);
//   - no workload printed FAIL, and each process answers SIGUSR1 with VERIFY OK after
//     checking its whole state itself (memory patterns, counters, TLS, sequence numbers,
//     getpid()/getppid()).

[Trait("Category", "Integration")]
public sealed class MemoryWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public MemoryWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>Item 1: a single-threaded program with 256 MiB of varied data and a counter.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task Memory256MiB_KillRestore_MemoryVerifiesAndCounterContinues()
    {
        await using var g = _fx.OpenGroup("memory", _out);
        string[] tags = { "count" }, roles = { "memory" };
        var launched = await g.Launch("memory", Repo.Workload("wl_memory"), "256");

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            Assert.Equal(launched.Pid, Assert.Single(ck.Members).Pid);
            if (round == 1)
            {
                Assert.Equal("full", ck.Kind);
                Assert.True(ck.Bytes >= 256L << 20,
                    $"a full checkpoint of 256 MiB of random data reported only {ck.Bytes} bytes");
            }
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(launched.Pid, Assert.Single(after).Pid);
        }
    }
}

[Trait("Category", "Integration")]
public sealed class ThreadsWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public ThreadsWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>Item 2: 8 threads, a mutex-protected shared counter, per-thread counters, TLS.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task EightThreads_KillRestore_CountersAndThreadLocalsConsistent()
    {
        await using var g = _fx.OpenGroup("threads", _out);
        string[] tags = { "count" }, roles = { "threads" };
        var launched = await g.Launch("threads", Repo.Workload("wl_threads"));

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            long sharedAtCheckpoint = SharedValue(g.Log.Lines(0, ck.StdoutPos), ck.CountsAt["count"]);
            await g.KillMembers(ck.Members);
            long mark = g.Log.Length;
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(launched.Pid, Assert.Single(after).Pid);

            // The shared counter never goes back: the first value after the restore is at
            // least the value printed at the checkpoint.
            long sharedAfter = SharedValue(g.Log.Lines(mark), ck.CountsAt["count"] + 1);
            Assert.True(sharedAfter >= sharedAtCheckpoint,
                $"shared counter went back from {sharedAtCheckpoint} to {sharedAfter} across the restore");
        }
    }

    /// <summary>The "shared S" of the line "count TICK shared S".</summary>
    private static long SharedValue(IEnumerable<string> lines, long tick)
    {
        var prefix = $"count {tick} shared ";
        var line = lines.LastOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
                   ?? throw new Xunit.Sdk.XunitException($"no line \"{prefix}...\"");
        return long.Parse(line[prefix.Length..].Split(' ')[0]);
    }
}

[Trait("Category", "Integration")]
public sealed class PipesWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public PipesWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Item 3: a parent and its forked child exchange sequenced messages over two pipes with
    /// data in flight; nothing lost or duplicated (both check every sequence number), and
    /// getpid()/getppid() unchanged (both check; status pids equal before and after).
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task ParentAndChildOverTwoPipes_KillRestore_NoMessageLostOrDuplicated()
    {
        await using var g = _fx.OpenGroup("pipes", _out);
        string[] tags = { "count" }, roles = { "pipes-parent", "pipes-child" };
        var parent = await g.Launch("pipes", Repo.Workload("wl_pipes"));

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 2);
            Assert.Contains(ck.Members, m => m.Pid == parent.Pid);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(ck.Members.Select(m => m.Pid).Order(), after.Select(m => m.Pid).Order());
        }
    }
}

[Trait("Category", "Integration")]
public sealed class ScriptExecWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public ScriptExecWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Item 4: a bash script runs a pipeline, execs into a C program that forks a child,
    /// which execs another program; everything is restored, each process as the program
    /// it had become.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task ScriptThatExecsAndForks_KillRestore_EachProcessIsWhatItBecame()
    {
        await using var g = _fx.OpenGroup("script", _out);
        string[] tags = { "parent count", "child count" }, roles = { "exec-parent", "exec-child" };
        var script = await g.Launch("script", Repo.Workload("wl_script.sh"));

        await g.WaitUntil(() => g.Log.Lines().Any(l => l.StartsWith("script pipeline ok 1000", StringComparison.Ordinal)),
            "the script's pipeline result");
        var before = await g.WaitForMembers(m => m.Count == 2 && IsExecPair(m), "wl_exec_parent and wl_exec_child");
        AssertExecPair(g, before);
        Assert.Equal(script.Pid, before.Single(m => m.Program!.EndsWith("wl_exec_parent", StringComparison.Ordinal)).Pid);

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 2);
            AssertExecPair(g, ck.Members);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            AssertExecPair(g, after);
        }
    }

    // A loop of short-lived commands, as fast as bash runs them: a pipeline in a command
    // substitution (three forks, one exec) and /bin/true; each result checked, each turn counted.
    private const string PipelineScript = """
        i=0
        while :; do
          i=$((i+1))
          n=$(echo "$i" | /bin/cat)
          [ "$n" = "$i" ] || echo "FAIL the pipeline gave '$n' for $i"
          /bin/true
          echo "pipeline count $i"
        done
        """;

    /// <summary>
    /// A script driving short-lived commands: processes exit during every phase of a checkpoint,
    /// before they froze and while their images are written. Every checkpoint of twelve in a row
    /// succeeds (before, about half failed: "member N exited during PREPARE", or "during WRITE"),
    /// and the newest one restores: the script counts on from it.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task PipelineScript_CommandsExitDuringCheckpoints_EveryCheckpointSucceedsAndRestores()
    {
        const string tag = "pipeline count";
        await using var g = _fx.OpenGroup("pipeline", _out);
        await g.Launch("pipeline", "/bin/bash", "-c", PipelineScript);
        await g.WaitForCounts(tag, 3, 0);

        string id = "";
        for (int i = 0; i < 12; i++)
        {
            id = (await g.Run("checkpoint", g.Name)).Ok().Json.Str("id")!;
        }
        var saved = g.Log.LastCount(tag, await g.StdoutPosAt(id)) ?? throw g.Failure($"no \"{tag} N\" line before checkpoint {id}");

        (await g.Run("stop", g.Name)).Ok();
        long mark = g.Log.Length;
        Assert.Equal(id, (await g.Run("restore", g.Name)).Ok().Json.Str("id"));
        await g.WaitUntil(() => g.Log.Counts(tag, mark).Count >= 5, $"5 \"{tag} N\" lines after the restore");
        var after = g.Log.Counts(tag, mark);
        Assert.Equal(Enumerable.Range(0, after.Count).Select(k => saved + 1 + k), after);
        g.AssertNoFail();
        (await g.Run("stop", g.Name)).Ok();
    }

    private static bool IsExecPair(List<Infrastructure.Member> m) =>
        m.Any(x => x.Program?.EndsWith("wl_exec_parent", StringComparison.Ordinal) == true) &&
        m.Any(x => x.Program?.EndsWith("wl_exec_child", StringComparison.Ordinal) == true);

    private static void AssertExecPair(GroupSession g, IReadOnlyList<Infrastructure.Member> members)
    {
        foreach (var program in new[] { "wl_exec_parent", "wl_exec_child" })
        {
            var m = members.SingleOrDefault(x => x.Program?.EndsWith(program, StringComparison.Ordinal) == true)
                    ?? throw g.Failure($"status shows no member running {program}: {string.Join("; ", members)}");
            if (m.ExecCount is not >= 1)
            {
                throw g.Failure($"{program} was exec'd, so its execCount must be at least 1: {m}");
            }
        }
    }
}

[Trait("Category", "Integration")]
public sealed class FifoWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public FifoWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Item 5: two independent applications launched into one group 2 s apart (the second
    /// by a second `hactl launch` into the running group), talking over a FIFO.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task WriterAndReaderLaunchedApart_KillRestore_NoRecordLostOrDuplicated()
    {
        await using var g = _fx.OpenGroup("fifo", _out);
        string[] tags = { "writer count", "reader count" }, roles = { "fifo-writer", "fifo-reader" };
        var fifo = Path.Combine(_fx.TempDir, g.Name + ".fifo");

        var writer = await g.Launch("writer", Repo.Workload("wl_fifo_writer"), fifo);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var reader = await g.Launch("reader", Repo.Workload("wl_fifo_reader"), fifo);
        Assert.NotEqual(writer.Pid, reader.Pid);

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 2);
            Assert.Equal(new[] { writer.Pid, reader.Pid }.Order(), ck.Members.Select(m => m.Pid).Order());
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(new[] { "reader", "writer" }, after.OrderBy(m => m.App).Select(m => m.App));
        }
    }
}

[Trait("Category", "Integration")]
public sealed class DescriptorsWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public DescriptorsWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Every descriptor kind a restore makes again (file, directory, character device, pipe,
    /// Unix stream and datagram pairs, Unix and TCP listeners, UDP, eventfd, timerfd,
    /// signalfd, epoll) comes back in the state it was captured in: the workload checks each.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task EveryDescriptorKind_KillRestore_EachDescriptorAsItWas()
    {
        await using var g = _fx.OpenGroup("descriptors", _out);
        string[] tags = { "count" }, roles = { "descriptors" };
        var launched = await g.Launch("descriptors", Repo.Workload("wl_descriptors"), _fx.TempDir);

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
