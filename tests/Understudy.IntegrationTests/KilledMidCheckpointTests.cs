using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 2, item 8: a member killed in the middle of a checkpoint. The checkpoint is
/// aborted, the other members resume, and the previous checkpoint stays valid.
/// </summary>
[Trait("Category", "Integration")]
public sealed class KilledMidCheckpointTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public KilledMidCheckpointTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task MemberKilledDuringWrite_CheckpointAborted_OthersResume_PreviousCheckpointRestores()
    {
        await using var g = _fx.OpenGroup("midckpt", _out);
        string[] tags = { "count" }, roles = { "memory" };

        // A alone, and a good checkpoint of it.
        var a = await g.Launch("a", Repo.Workload("wl_memory"), "16");
        var good = await g.Checkpoint(tags, members: 1);

        // B joins with the fault that makes it hang in the WRITE phase.
        var b = await LaunchStallingB(g);

        var checkpoint = g.Run("checkpoint", g.Name);
        var staging = await Staging(g, checkpoint);
        var stagingId = Path.GetFileName(staging);
        _out.WriteLine($"checkpoint {stagingId} is staging");

        // Let the healthy member get its image written if it can (best effort, not asserted),
        // then kill B in the middle of the checkpoint.
        for (int i = 0; i < 50 && !checkpoint.IsCompleted && !Directory.EnumerateFiles(staging).Any(); i++)
        {
            await Task.Delay(Timeouts.Poll);
        }

        Assert.False(checkpoint.IsCompleted, $"the checkpoint finished while B stalled:\n{(checkpoint.IsCompleted ? await checkpoint : null)}");
        await g.KillMembers(new[] { b });

        var result = await checkpoint;
        result.FailsWithOneLine();
        _out.WriteLine($"checkpoint aborted: {result.StderrLines[0]}");

        // A resumed, and was never restarted nor disturbed: its counter went 1, 2, 3, ...
        await g.WaitForCounts("count", 3, g.Log.Length);
        var counts = g.Log.Counts("count");
        Assert.Equal(1, counts[0]);
        for (int i = 1; i < counts.Count; i++)
        {
            Assert.True(counts[i] == counts[i - 1] + 1, $"A's counter went from {counts[i - 1]} to {counts[i]}");
        }

        // The staging area is discarded; the previous checkpoint is still the newest.
        await g.WaitUntil(() => !Directory.Exists(g.StagingDir) || !Directory.EnumerateFileSystemEntries(g.StagingDir).Any(),
            $"{g.StagingDir} to be emptied of the aborted checkpoint");
        Assert.False(Directory.Exists(Path.Combine(g.CheckpointsDir, stagingId)),
            $"the aborted checkpoint {stagingId} was committed");
        var ids = await g.CheckpointIds();
        Assert.Equal(good.Id, ids.LastOrDefault());

        // B left the group; A is the only member and verifies.
        var members = await g.WaitForMembers(m => m.Count == 1 && m[0].Pid == a.Pid, "only A after B was killed");
        await g.Verify(members, roles);

        // The previous checkpoint restores, and A continues from it.
        await g.KillMembers(members);
        await g.RestoreAndVerify(good, tags, roles, explicitId: true);
    }

    // Issue 10: a member stopped (SIGSTOP, a debugger) in the middle of a round cannot answer.
    // The round fails at once, with a line that names the member and the kill -CONT fix, rather
    // than after the phase's timeout; the others resume and nothing is committed.
    [Fact, Trait("Category", "Integration")]
    public async Task MemberStoppedInTheMiddleOfARound_CheckpointFailsNamingIt_OthersResume()
    {
        await using var g = _fx.OpenGroup("stopped-mid", _out);
        string[] tags = { "count" };
        await g.Launch("a", Repo.Workload("wl_memory"), "16");
        var good = await g.Checkpoint(tags, members: 1);

        // B hangs in the WRITE phase, so the round is still going when it is stopped.
        var b = await LaunchStallingB(g);

        var checkpoint = g.Run("checkpoint", g.Name);
        await Staging(g, checkpoint);
        Assert.True(Native.Kill(b.HostPid, Native.SIGSTOP), $"kill -STOP {b.HostPid} failed");
        HactlResult result;
        try
        {
            result = await checkpoint;
        }
        finally
        {
            Native.Kill(b.HostPid, Native.SIGCONT);
        }

        result.FailsWithOneLine();
        _out.WriteLine($"checkpoint failed: {result.StderrLines[0]}");
        Assert.Contains("is stopped", result.StderrLines[0]);
        Assert.Contains($"kill -CONT {b.HostPid}", result.StderrLines[0]);

        // A was thawed and counts on with no gap; the round left nothing behind.
        long from = g.Log.Length;
        await g.WaitForCounts("count", 3, from);
        var counts = g.Log.Counts("count");
        for (int i = 1; i < counts.Count; i++)
        {
            Assert.True(counts[i] == counts[i - 1] + 1, $"A's counter went from {counts[i - 1]} to {counts[i]}");
        }
        Assert.Equal(good.Id, (await g.CheckpointIds()).LastOrDefault());
    }

    /// <summary>Member B beside A: a counter that hangs in the WRITE phase of every checkpoint (UNDERSTUDY_FAULT=stall-write).</summary>
    private static async Task<Member> LaunchStallingB(GroupSession g)
    {
        var env = File.Exists("/usr/bin/env") ? "/usr/bin/env" : "/bin/env";
        var b = await g.Launch("b", env, "UNDERSTUDY_FAULT=stall-write", Repo.Workload("wl_counter"), "b");
        await g.WaitForCounts("b count", 3, 0);
        await g.WaitForMembers(m => m.Count == 2, "members a and b");
        return b;
    }

    /// <summary>The staging directory of the checkpoint in flight, once it exists.</summary>
    private static async Task<string> Staging(GroupSession g, Task<HactlResult> checkpoint)
    {
        string? staging = null;
        await g.WaitUntil(() =>
        {
            staging = Directory.Exists(g.StagingDir) ? Directory.EnumerateDirectories(g.StagingDir).FirstOrDefault() : null;
            return staging is not null || checkpoint.IsCompleted;
        }, $"a checkpoint directory in {g.StagingDir}");
        return staging ?? throw g.Failure(
            $"the checkpoint finished before any staging directory was seen (is UNDERSTUDY_FAULT=stall-write honoured?):\n{await checkpoint}");
    }
}
