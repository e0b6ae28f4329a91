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
        var after = await standby.RestoreAndVerify(newest, tags, roles);
        foreach (var program in new[] { "wl_exec_parent", "wl_exec_child" })
        {
            var member = after.Single(m => m.Program?.EndsWith(program, StringComparison.Ordinal) == true);
            Assert.True(member.ExecCount >= 1, $"{program} was exec'd: {member}");
        }
    }

    private static Task<JsonElement> WaitReplicated(GroupSession group, string id) =>
        StandbyReplication.WaitInSync(group.Fixture.Hactl, group.Name, id, group.Failure);

    /// <summary>Polls `hactl status G --json` on the group's agent until its replication satisfies <paramref name="ok"/>.</summary>
    internal static Task<JsonElement> WaitReplication(GroupSession group, Func<JsonElement, bool> ok, string what) =>
        StandbyReplication.WaitAsync(group.Fixture.Hactl, group.Name, ok, what, group.Failure);
}
