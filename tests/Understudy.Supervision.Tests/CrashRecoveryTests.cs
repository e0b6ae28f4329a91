using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 2: a kill -9 of any member brings the whole group back, restored from its last
/// checkpoint, and its periodic checkpoints go on. The workloads show that they continued from
/// the checkpoint: every counter goes on from the value it had printed at the checkpoint (not
/// from 1), every process keeps its pid, and each one verifies itself.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class CrashRecoveryTests(SupervisionFixture fx, ITestOutputHelper output)
{
    private static readonly string[] Tags = ["server count", "worker count", "client count"];
    private static readonly string[] Roles = ["service-server", "service-worker", "service-client"];

    [Fact]
    public async Task KillMinus9OfAnyMember_WholeGroupRestoredFromItsLastCheckpoint_AndCheckpointsGoOn()
    {
        await using var g = fx.Group("crash", output);
        var port = Workloads.FreePort();
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints:
              interval: 700ms
              retention: 20
            recovery:
              action: restore
              maxAttempts: 5
              window: 10m
            {{Workloads.ServiceApps(port)}}
            """)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var before = await g.Members();
        Assert.Equal(3, before.Count);

        string? previousCheckpoint = null;
        foreach (var victim in new[] { "worker", "server" })
        {
            var mark = await g.Mark();
            await g.WaitForEvents("checkpoint.taken", mark, 2);
            var killed = (await g.Members()).Single(m => m.App == victim);
            await g.Kill9(killed.HostPid);

            var fault = await g.WaitForEvent("fault.detected", mark);
            Assert.Equal("crash", fault.Field("kind"));
            Assert.Equal(victim, fault.Field("app"));
            Assert.Contains("killed by signal 9", fault.Message);
            var recovered = await g.WaitForEvent("recovery.finished", fault.Seq);
            var checkpoint = recovered.Field("checkpointId") ?? throw g.Failure($"recovery restored no checkpoint: {recovered}");
            // Periodic checkpoints went on after the previous recovery: this one is newer.
            Assert.True(previousCheckpoint is null || string.CompareOrdinal(checkpoint, previousCheckpoint) > 0,
                $"recovery after killing {victim} restored {checkpoint}, not newer than {previousCheckpoint}");
            previousCheckpoint = checkpoint;

            // The counters go on from the checkpoint that was restored.
            var offset = await g.StdoutOffset(checkpoint);
            foreach (var tag in Tags)
            {
                var at = Continuity.ValueAt(g.Log, tag, offset);
                Assert.True(at > 1, $"\"{tag}\" was only {at} at checkpoint {checkpoint}");
                await g.WaitUntil(() => Task.FromResult(Continuity.AssertRestoredFrom(g.Log, tag, offset, at).Count >= 5),
                    $"5 \"{tag}\" lines after the restore of {checkpoint}");
            }

            // The same processes (pids as getpid() sees them), each checking its own state.
            var after = await g.Members();
            Assert.Equal(before.Select(m => (m.Pid, m.App)), after.Select(m => (m.Pid, m.App)));
            Assert.DoesNotContain(after, m => m.HostPid == killed.HostPid);
            await g.Verify(after, Roles);
            Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));
            Assert.Single(await g.Events(mark), e => e.Type == "recovery.started");
        }

        // Through both recoveries the client was answered on the connection it made at launch
        // (both of its ends are in the group: TCP repair carries it over): it never had to
        // connect again.
        await Pongs.WaitForMoreOnTheSameConnection(g.Log, "client", 0, g.WaitUntil);
    }
}
