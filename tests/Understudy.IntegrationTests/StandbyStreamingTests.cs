using System.Text.Json;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 11, "Streaming to a standby": every committed checkpoint of a group goes to its standby
/// node's agent, and the standby's copy restores there once the primary's copy is stopped. Two
/// real agents on loopback (<see cref="StandbyPair"/>).
/// </summary>
[Trait("Category", "Integration")]
public sealed class StandbyStreamingTests : IClassFixture<StandbyPair>
{
    private readonly StandbyPair _pair;
    private readonly ITestOutputHelper _out;

    public StandbyStreamingTests(StandbyPair pair, ITestOutputHelper output) => (_pair, _out) = (pair, output);

    /// <summary>
    /// Item 2: the 256 MiB counter on node-a with standby node-b; a full checkpoint and an
    /// incremental one reach node-b; node-a's copy is stopped, node-b restores the newest
    /// replicated checkpoint: the counter continues from it, the pid is the same, memory verifies.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task Counter256MiB_EveryCheckpointStreamed_StandbyRestoresTheNewest()
    {
        await using var primary = _pair.Primary.OpenGroup("standby", _out);
        string[] tags = { "count" }, roles = { "memory" };
        var launched = await primary.LaunchWithOptions("memory", ["--standby", StandbyPair.StandbyNode], Repo.Workload("wl_memory"), "256");

        var full = await primary.Checkpoint(tags, members: 1);
        Assert.Equal("full", full.Kind);
        await WaitReplicated(primary, full.Id);
        var newest = await primary.Checkpoint(tags, members: 1);
        Assert.Equal("incremental", newest.Kind);
        var replication = await WaitReplicated(primary, newest.Id);
        Assert.True(replication.Long("bytesSent") >= full.Bytes + newest.Bytes,
            $"the standby got both checkpoints, so at least {full.Bytes + newest.Bytes} bytes were sent: {replication}");

        // The standby lists the replicated chain.
        var listed = (await _pair.Standby.Hactl.Run("images", "list", primary.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).ToList();
        Assert.Equal([full.Id, newest.Id], listed);

        (await primary.Run("stop", primary.Name)).Ok();
        await using var standby = new GroupSession(_pair.Standby, primary.Name, _out, primary.Log);
        standby.TakesOver();
        var after = await standby.RestoreAndVerify(newest, tags, roles);
        Assert.Equal(launched.Pid, Assert.Single(after).Pid);
    }

    /// <summary>
    /// Item 2, the other workload: a bash script that execs into a program that forks a child,
    /// which execs another program, with standby node-b; restored there, each process is the
    /// program it had become, with its pid, and the counters go on from the checkpoint.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task ScriptThatExecsAndForks_StreamedToStandby_RestoresThereAsItHadBecome()
    {
        await using var primary = _pair.Primary.OpenGroup("standby-script", _out);
        string[] tags = { "parent count", "child count" }, roles = { "exec-parent", "exec-child" };
        await primary.LaunchWithOptions("script", ["--standby", StandbyPair.StandbyNode], Repo.Workload("wl_script.sh"));
        await primary.WaitForMembers(m => m.Count == 2 && m.All(x => x.Program?.Contains("wl_exec_", StringComparison.Ordinal) == true),
            "wl_exec_parent and wl_exec_child");

        await primary.Checkpoint(tags, members: 2);
        var newest = await primary.Checkpoint(tags, members: 2);
        await WaitReplicated(primary, newest.Id);

        (await primary.Run("stop", primary.Name)).Ok();
        await using var standby = new GroupSession(_pair.Standby, primary.Name, _out, primary.Log);
        standby.TakesOver();
        var after = await standby.RestoreAndVerify(newest, tags, roles);
        foreach (var program in new[] { "wl_exec_parent", "wl_exec_child" })
        {
            var member = after.Single(m => m.Program?.EndsWith(program, StringComparison.Ordinal) == true);
            Assert.True(member.ExecCount >= 1, $"{program} was exec'd: {member}");
        }
    }

    /// <summary>
    /// Streaming goes "while the images are being written, not after the commit": member B hangs in
    /// WRITE (UNDERSTUDY_FAULT=stall-write), so the full checkpoint is never committed; meanwhile
    /// member A's whole image is on the standby already, byte for byte. B is killed and the checkpoint
    /// aborts; the next one takes the same id, and the standby's copy of it holds its bytes, not the
    /// aborted one's, and restores there.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task ImagesReachTheStandbyWhileWritten_AnAbortedCheckpointsBytesNeverMixIn()
    {
        await using var primary = _pair.Primary.OpenGroup("while-written", _out);
        string[] tags = { "count" }, roles = { "memory" };
        var a = await primary.LaunchWithOptions("a", ["--standby", StandbyPair.StandbyNode], Repo.Workload("wl_memory"), "64");
        var env = File.Exists("/usr/bin/env") ? "/usr/bin/env" : "/bin/env";
        var b = await primary.Launch("b", env, "UNDERSTUDY_FAULT=stall-write", Repo.Workload("wl_counter"), "b");
        await primary.WaitForCounts("b count", 3, 0);
        await primary.WaitForMembers(m => m.Count == 2, "members a and b");

        var checkpoint = primary.Run("checkpoint", primary.Name, "--full");
        string? staging = null;
        await primary.WaitUntil(
            () => (staging = Directory.Exists(primary.StagingDir) ? Directory.EnumerateDirectories(primary.StagingDir).FirstOrDefault() : null) is not null
                  || checkpoint.IsCompleted,
            $"a checkpoint directory in {primary.StagingDir}");
        if (staging is null)
        {
            throw primary.Failure($"the checkpoint ended before its staging directory was seen:\n{await checkpoint}");
        }
        var id = Path.GetFileName(staging);
        var standbyStaging = Path.Combine(_pair.Standby.GroupDir(primary.Name), "staging", id);
        string[] imageOfA = [$"{a.Pid}.meta", $"{a.Pid}.pages"];
        // A's .meta is written last: then its image is whole on the primary, and soon on the standby.
        await primary.WaitUntil(
            () => imageOfA.All(f => Length(Path.Combine(staging, f)) is > 0 and var n && Length(Path.Combine(standbyStaging, f)) == n),
            $"A's image of checkpoint {id} on the standby ({standbyStaging}) while B holds the checkpoint in WRITE");
        foreach (var file in imageOfA)
        {
            Assert.True(ReadShared(Path.Combine(staging, file)).AsSpan().SequenceEqual(ReadShared(Path.Combine(standbyStaging, file))),
                $"the standby's {file} of checkpoint {id} differs from the primary's");
        }
        Assert.DoesNotContain(id, await CommittedOnStandby(primary.Name));

        Assert.True(Native.Kill(b.HostPid, Native.SIGKILL), $"kill -KILL {b.HostPid} failed");
        (await checkpoint).FailsWithOneLine();
        await primary.WaitForMembers(m => m.Count == 1 && m[0].Pid == a.Pid, "only A after B was killed");

        var taken = await primary.Checkpoint(tags, members: 1, full: true);
        await WaitReplicated(primary, taken.Id);
        Assert.Equal([taken.Id], await CommittedOnStandby(primary.Name));
        var primaryDir = Path.Combine(primary.CheckpointsDir, taken.Id);
        var standbyDir = Path.Combine(_pair.Standby.GroupDir(primary.Name), "checkpoints", taken.Id);
        foreach (var file in imageOfA)
        {
            Assert.True(File.ReadAllBytes(Path.Combine(primaryDir, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(standbyDir, file))),
                $"the standby's {file} of checkpoint {taken.Id} differs from the primary's");
        }

        (await primary.Run("stop", primary.Name)).Ok();
        await using var standby = new GroupSession(_pair.Standby, primary.Name, _out, primary.Log);
        standby.TakesOver();
        var after = await standby.RestoreAndVerify(taken, tags, roles);
        Assert.Equal(a.Pid, Assert.Single(after).Pid);
    }

    private static long Length(string path) => File.Exists(path) ? new FileInfo(path).Length : -1;

    // The agents hold the files open for writing while this reads them.
    private static byte[] ReadShared(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    private async Task<List<string>> CommittedOnStandby(string group) =>
        (await _pair.Standby.Hactl.Run("images", "list", group)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")!).ToList();

    private static Task<JsonElement> WaitReplicated(GroupSession group, string id) =>
        StandbyReplication.WaitInSync(group.Fixture.Hactl, group.Name, id, group.Failure);

    /// <summary>Polls `hactl status G --json` on the group's agent until its replication satisfies <paramref name="ok"/>.</summary>
    internal static Task<JsonElement> WaitReplication(GroupSession group, Func<JsonElement, bool> ok, string what) =>
        StandbyReplication.WaitAsync(group.Fixture.Hactl, group.Name, ok, what, group.Failure);
}
