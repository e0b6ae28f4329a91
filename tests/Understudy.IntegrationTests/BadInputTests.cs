using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 2, item 7: bad input gives one clear error line and a nonzero exit, nothing
/// crashes, and the last good checkpoint still restores.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BadInputTests : IClassFixture<AgentFixture>
{
    private static readonly string[] Tags = { "count" };
    private static readonly string[] Roles = { "memory" };
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public BadInputTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>(a) One byte flipped in the middle of the newest checkpoint's page data.</summary>
    [Fact, Trait("Category", "Integration")]
    public Task CorruptedPageByte_RestoreRefusedWithOneLine_PreviousCheckpointRestores() =>
        DamagedNewestCheckpoint("corrupt", "*.pages", path =>
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            FlipMiddleByte(fs);
            _out.WriteLine($"flipped the byte at offset {fs.Length / 2} of {path}");
        });

    /// <summary>(b) The newest checkpoint's metadata image cut in half.</summary>
    [Fact, Trait("Category", "Integration")]
    public Task TruncatedMetaImage_RestoreRefusedWithOneLine_PreviousCheckpointRestores() =>
        DamagedNewestCheckpoint("truncated", "*.meta", path =>
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            Assert.True(fs.Length > 1, $"{path} is empty");
            long half = fs.Length / 2;
            fs.SetLength(half);
            fs.Flush(flushToDisk: true);
            _out.WriteLine($"truncated {path} to {half} bytes");
        });

    /// <summary>
    /// (f) A checkpoint taken here is restored without its pages being read first, while its pages
    /// files keep the device, inode, size and change time they had at its commit (docs/architecture.md,
    /// "A restore"). One changed in place since, byte for byte, is read and refused all the same,
    /// before anything is mapped (refused, not failed in us-restorer), and the group can be restored
    /// from the checkpoint before it.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task PagesOfACheckpointTakenHereChangedInPlace_RestoreRefusedBeforeAnythingIsMapped() =>
        DamagedBeforeAnyVerify("changed-here", path =>
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            FlipMiddleByte(fs);
            _out.WriteLine($"flipped the byte at offset {fs.Length / 2} of {path} in place");
        });

    /// <summary>(g) As (f), the pages file replaced by a copy of itself with one byte changed: another inode.</summary>
    [Fact, Trait("Category", "Integration")]
    public Task PagesOfACheckpointTakenHereReplaced_RestoreRefusedBeforeAnythingIsMapped() =>
        DamagedBeforeAnyVerify("replaced-here", path =>
        {
            string copy = path + ".copy";
            File.Copy(path, copy);
            using (var fs = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
            {
                FlipMiddleByte(fs);
            }
            File.Move(copy, path, overwrite: true);
            _out.WriteLine($"replaced {path} by a copy with the byte at its middle flipped");
        });

    private static void FlipMiddleByte(FileStream fs)
    {
        Assert.True(fs.Length > 0, $"{fs.Name} is empty");
        fs.Position = fs.Length / 2;
        int b = fs.ReadByte();
        fs.Position = fs.Length / 2;
        fs.WriteByte((byte)(b ^ 0xFF));
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Damages the newest checkpoint's pages before anything read them (no images verify, no merge).</summary>
    private async Task DamagedBeforeAnyVerify(string prefix, Action<string> damage)
    {
        await using var g = _fx.OpenGroup(prefix, _out);
        await g.Launch("memory", Repo.Workload("wl_memory"), "16");
        var good = await g.Checkpoint(Tags, members: 1, full: true);
        await g.WaitForCounts("count", 3, g.Log.Length);
        var newest = await g.Checkpoint(Tags, members: 1, full: true);
        await g.KillMembers(newest.Members);

        var victim = Assert.Single(Directory.EnumerateFiles(Path.Combine(g.CheckpointsDir, newest.Id), "*.pages"));
        damage(victim);

        var restore = await g.Run("restore", g.Name, "--checkpoint", newest.Id);
        restore.FailsWithOneLine();
        _out.WriteLine($"restore refused: {restore.StderrLines[0]}");
        Assert.Contains("refused", restore.StderrLines[0], StringComparison.Ordinal);
        Assert.Contains("checksum", restore.StderrLines[0], StringComparison.Ordinal);
        Assert.Empty(await g.Members());

        await g.RestoreAndVerify(good, Tags, Roles, explicitId: true);
    }

    private async Task DamagedNewestCheckpoint(string prefix, string pattern, Action<string> damage)
    {
        await using var g = _fx.OpenGroup(prefix, _out);
        await g.Launch("memory", Repo.Workload("wl_memory"), "16");

        var good = await g.Checkpoint(Tags, members: 1);
        await g.WaitForCounts("count", 3, g.Log.Length);
        var newest = await g.Checkpoint(Tags, members: 1);
        Assert.NotEqual(good.Id, newest.Id);
        await g.KillMembers(newest.Members);
        // The damage must reach the files the checkpoint keeps, not ones a merge is replacing.
        await g.WaitUntilMerged(newest.Id);

        // Controls: verify accepts both images before one is damaged.
        foreach (var id in new[] { good.Id, newest.Id })
        {
            var (bad, r) = await g.VerifyImage(id);
            Assert.False(bad, $"images verify rejects the intact checkpoint {id}:\n{r}");
        }

        var dir = Path.Combine(g.CheckpointsDir, newest.Id);
        var victim = Directory.EnumerateFiles(dir, pattern).OrderByDescending(f => new FileInfo(f).Length).FirstOrDefault()
                     ?? throw g.Failure($"checkpoint {newest.Id} has no {pattern} file in {dir}");
        damage(victim);

        var (reported, verify) = await g.VerifyImage(newest.Id);
        Assert.True(reported, $"images verify does not report the damaged {Path.GetFileName(victim)}:\n{verify}");

        var restore = await g.Run("restore", g.Name);
        restore.FailsWithOneLine();
        _out.WriteLine($"restore refused: {restore.StderrLines[0]}");

        // Nothing crashed, and nothing already saved was lost.
        Assert.True(_fx.AgentRunning, "the agent died on a damaged image");
        (await g.Run("status")).Ok();
        Assert.Contains(good.Id, await g.CheckpointIds());
        var (goodBad, goodVerify) = await g.VerifyImage(good.Id);
        Assert.False(goodBad, $"the intact checkpoint {good.Id} no longer verifies:\n{goodVerify}");

        await g.RestoreAndVerify(good, Tags, Roles, explicitId: true);
    }

    /// <summary>(c) A group the agent has never heard of.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task UnknownGroup_OneErrorLine_NonzeroExit()
    {
        var hactl = _fx.Hactl.WithLog(_out.WriteLine);
        var name = "no-such-group-" + Guid.NewGuid().ToString("N")[..8];
        foreach (var args in new[]
                 {
                     new[] { "restore", name },
                     new[] { "restore", name, "--checkpoint", "000001" },
                     new[] { "checkpoint", name },
                 })
        {
            var r = await hactl.Run(args);
            r.FailsWithOneLine();
        }
        Assert.True(_fx.AgentRunning, "the agent died on an unknown group");
        (await hactl.Run("status")).Ok();
    }

    /// <summary>(d) No agent listening at the given address.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task AgentNotRunning_OneErrorLine_NonzeroExit()
    {
        var hactl = _fx.Hactl.WithLog(_out.WriteLine);
        var nowhere = $"unix:/tmp/us-it-nonexistent-{Guid.NewGuid():N}.sock";
        foreach (var args in new[]
                 {
                     new[] { "status" },
                     new[] { "checkpoint", "g" },
                     new[] { "restore", "g" },
                     new[] { "stop", "g" },
                     new[] { "launch", "g", "--", "/bin/true" },
                 })
        {
            var r = await hactl.Run(args, agent: nowhere);
            r.FailsWithOneLine();
        }
    }

    /// <summary>(e) A number that is not one: a usage line and exit code 2, never a stack trace.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task NumbersThatAreNot_OneUsageLine_ExitCodeTwo()
    {
        var hactl = _fx.Hactl.WithLog(_out.WriteLine);
        foreach (var value in new[] { "abc", "99999999999999", "-5", "0" })
        {
            var r = await hactl.Run("events", "--last", value);
            r.FailsWithOneLine();
            Assert.Equal(2, r.ExitCode);
            Assert.Contains($"--last '{value}' is not a whole number", r.Stderr);
        }
        var agent = await hactl.Run("agent", "run", "--listen", "unix:/tmp/x.sock", "--state-dir", "/tmp/x", "--full-every", "abc");
        agent.FailsWithOneLine();
        Assert.Equal(2, agent.ExitCode);
    }

    /// <summary>
    /// (f) Another user: refused, and told why and what to do, not to start an agent. By the
    /// agent's private directory; by the socket's own mode (0600); then, with both opened to
    /// everyone, by the agent itself.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task AnotherUser_IsRefusedWithOneLineThatSaysWhy()
    {
        var args = new[] { "-u", "nobody", "--", Repo.Hactl, "status", "--agent", $"unix:{_fx.Socket}" };

        var byDirectory = await Hactl.RunRaw("runuser", args, Timeouts.Command, _out.WriteLine);
        byDirectory.FailsWithOneLine();
        Assert.Contains($"permission denied: {_fx.TempDir} belongs to another user; run hactl as root or as the agent's user", byDirectory.Stderr);

        var dirMode = File.GetUnixFileMode(_fx.TempDir);
        var socketMode = File.GetUnixFileMode(_fx.Socket);
        try
        {
            File.SetUnixFileMode(_fx.TempDir, dirMode | UnixFileMode.OtherExecute);
            var bySocket = await Hactl.RunRaw("runuser", args, Timeouts.Command, _out.WriteLine);
            bySocket.FailsWithOneLine();
            Assert.Contains("permission denied: the socket belongs to another user; run hactl as root or as the agent's user", bySocket.Stderr);

            File.SetUnixFileMode(_fx.Socket, socketMode | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);
            var byAgent = await Hactl.RunRaw("runuser", args, Timeouts.Command, _out.WriteLine);
            byAgent.FailsWithOneLine();
            Assert.Matches(@"uid \d+ \(pid \d+\) may not use this agent: only root and uid 0, the agent's user, may; run hactl as one of them", byAgent.Stderr);
        }
        finally
        {
            File.SetUnixFileMode(_fx.Socket, socketMode);
            File.SetUnixFileMode(_fx.TempDir, dirMode);
        }
        Assert.True(_fx.AgentRunning, "the agent died on a refused user");
        (await _fx.Hactl.WithLog(_out.WriteLine).Run("status")).Ok();
    }
}
