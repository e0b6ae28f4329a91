using Understudy.Images;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// The group's output log and native log across a restore on the node that took the checkpoint:
/// the paths are the same, and nothing changes (LabOutputPathTests restores on another node). Each
/// checkpoint's manifest records the output log.
/// </summary>
public sealed class OutputPathTests(AgentFixture fx, ITestOutputHelper output) : IClassFixture<AgentFixture>
{
    /// <summary>
    /// wl_output_path through two rounds of checkpoint, kill -9 and restore: after each, a program it
    /// execs is given the group's output log and native log, and its stdout is that output log.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task KillRestoreTwice_AProgramExecdAfterwardsWritesIntoTheGroupsLogsAndIsToldSo()
    {
        await using var g = fx.OpenGroup("output-path", output);
        string[] tags = ["paths count"], roles = ["output-path"];
        var expected = $"VERIFY OK output-path output={Path.Combine(g.Dir, "output.log")} log={Path.Combine(g.Dir, "native.log")}";
        await g.Launch("paths", Repo.Workload("wl_output_path"));
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            var manifest = CheckpointManifest.Load(Path.Combine(g.CheckpointsDir, ck.Id, CheckpointManifest.FileName));
            Assert.Equal(Path.Combine(g.Dir, "output.log"), manifest.OutputLog);
            await g.KillMembers(ck.Members);
            long mark = g.Log.Length;
            await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(expected, g.Log.Verified("output-path", mark).Last());
        }
    }
}
