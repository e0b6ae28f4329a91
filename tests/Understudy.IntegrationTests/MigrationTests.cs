using System.Text.Json;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 11, `hactl migrate GROUP --to NODE`: a live group moves to another node with nothing lost,
/// the source's processes end only once the target runs the group, a failure leaves the group
/// running on the source, and the roles swap. Two real agents of one cluster (<see cref="StandbyPair"/>).
/// </summary>
[Trait("Category", "Integration")]
public sealed class MigrationTests : IClassFixture<StandbyPair>
{
    private readonly StandbyPair _pair;
    private readonly ITestOutputHelper _out;

    public MigrationTests(StandbyPair pair, ITestOutputHelper output) => (_pair, _out) = (pair, output);

    /// <summary>
    /// The 64 MiB memory workload moves from node-a to node-b and back. Each time: the same pid
    /// runs on the target, its memory verifies, nothing runs on the source any more, and its
    /// counter is one unbroken sequence across both moves (no value lost, none repeated: the
    /// source was frozen from the last checkpoint until it was killed). After the first move
    /// node-b streams the group's checkpoints to node-a: the roles swapped.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task Memory64MiB_MigratesThereAndBack_Lossless_SamePid_RolesSwap()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate", _out);
        await using var onB = new GroupSession(_pair.Standby, onA.Name, _out, onA.Log);
        string[] roles = { "memory" };
        var launched = await onA.Launch("memory", Repo.Workload("wl_memory"), "64");
        await onA.WaitForCounts("count", 3, 0);

        var there = await Migrate(onA, StandbyPair.StandbyNode);
        Assert.True(there.Rounds >= 2, $"a pre-copy round, then the frozen one: {there.Json}");
        Assert.True(there.Bytes >= 64L << 20, $"the 64 MiB buffer crossed the link: {there.Json}");
        await AssertRunsOn(onB, launched.Pid, roles);
        Assert.Empty(await onA.Members());

        // The roles swapped: node-b streams the group's checkpoints to node-a.
        var taken = (await onB.Run("checkpoint", onB.Name)).Ok().Json.Str("id")!;
        var replication = await StandbyStreamingTests.WaitReplication(
            onB, r => r.Str("state") == "in-sync" && r.Str("lastReplicated") == taken, $"checkpoint {taken} replicated to node-a");
        Assert.Equal(StandbyPair.PrimaryNode, replication.Str("standby"));

        var back = await Migrate(onB, StandbyPair.PrimaryNode);
        Assert.True(back.Bytes < there.Bytes, $"node-a held the chain already: only what changed crossed back ({back.Bytes} < {there.Bytes} bytes)");
        await AssertRunsOn(onA, launched.Pid, roles);
        Assert.Empty(await onB.Members());

        long mark = onA.Log.Length;
        await onA.WaitForCounts("count", 5, mark);
        AssertUnbroken(onA, "count");
    }

    /// <summary>
    /// The target refuses the takeover after the last round (it has a policy for the group): the
    /// group, frozen for that round, runs on on the source: same pid, memory verifies, its counter
    /// goes on unbroken; migrate fails with one line that says so.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetRefusesTheTakeover_GroupRunsOnAtTheSource()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate-refused", _out);
        string[] roles = { "memory" };
        var launched = await onA.Launch("memory", Repo.Workload("wl_memory"), "16");
        await onA.WaitForCounts("count", 3, 0);
        var policy = Path.Combine(_pair.Standby.TempDir, $"{onA.Name}.yaml");
        await File.WriteAllTextAsync(policy, $"group: {onA.Name}\napps:\n  - name: memory\n    command: {Repo.Workload("wl_memory")}\n    args: [\"16\"]\n");
        (await _pair.Standby.Hactl.Run("group", "apply", "-f", policy)).Ok();

        var failed = (await onA.Run("migrate", onA.Name, "--to", StandbyPair.StandbyNode)).FailsWithOneLine();
        Assert.Contains("policy", failed.Stderr);
        Assert.Contains("runs on here", failed.Stderr);

        var members = await onA.WaitForMembers(m => m.Count == 1, "the group still on node-a");
        Assert.Equal(launched.Pid, members.Single().Pid);
        long mark = onA.Log.Length;
        await onA.WaitForCounts("count", 5, mark);
        await onA.Verify(members, roles);
        AssertUnbroken(onA, "count");
        var events = (await onA.Run("events", onA.Name)).Ok().Stdout;
        Assert.Contains("migration.failed", events);
    }

    /// <summary>Bad input: one line each, and the group is not touched.</summary>
    [Fact, Trait("Category", "Integration")]
    public async Task BadInput_OneLineEach()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate-bad", _out);
        await onA.Launch("memory", Repo.Workload("wl_memory"), "4");
        await onA.WaitForCounts("count", 2, 0);

        var notPeer = (await onA.Run("migrate", onA.Name, "--to", "node-z")).FailsWithOneLine();
        Assert.Contains("node-z", notPeer.Stderr);
        Assert.Contains("--peer", notPeer.Stderr);
        var self = (await onA.Run("migrate", onA.Name, "--to", StandbyPair.PrimaryNode)).FailsWithOneLine();
        Assert.Contains("this node", self.Stderr);
        var unknown = (await onA.Run("migrate", "no-such-group", "--to", StandbyPair.StandbyNode)).FailsWithOneLine();
        Assert.Contains("no-such-group", unknown.Stderr);
        var noTarget = (await onA.Run("migrate", onA.Name)).FailsWithOneLine();
        Assert.Contains("--to", noTarget.Stderr);

        Assert.Single(await onA.Members());
        Assert.Empty(await onA.CheckpointIds());
    }

    private sealed record Migration(int Rounds, long Bytes, double FrozenMs, JsonElement Json);

    private async Task<Migration> Migrate(GroupSession from, string to)
    {
        var json = (await from.Run("migrate", from.Name, "--to", to)).Ok().Json;
        _out.WriteLine($"migrate {from.Name} --to {to}: {json}");
        Assert.Equal(to, json.Str("to"));
        var migration = new Migration((int)(json.Long("rounds") ?? 0), json.Long("bytes") ?? 0, json.GetProperty("frozenMs").GetDouble(), json.Clone());
        Assert.True(migration.FrozenMs > 0, $"frozenMs: {json}");
        Assert.True(json.GetProperty("durationMs").GetDouble() >= migration.FrozenMs, $"durationMs covers frozenMs: {json}");
        return migration;
    }

    private static async Task AssertRunsOn(GroupSession on, int pid, string[] roles)
    {
        var members = await on.WaitForMembers(m => m.Count == 1, "the group's process on the target");
        Assert.Equal(pid, members.Single().Pid);
        long mark = on.Log.Length;
        await on.WaitForCounts("count", 3, mark);
        await on.Verify(members, roles);
    }

    /// <summary>Every "TAG N" line of the group's log, from the first: N, N+1, N+2, ... with no gap and no repeat.</summary>
    private static void AssertUnbroken(GroupSession group, string tag)
    {
        var counts = group.Log.Counts(tag, 0);
        for (var i = 1; i < counts.Count; i++)
        {
            if (counts[i] != counts[i - 1] + 1)
            {
                throw group.Failure($"\"{tag}\" went from {counts[i - 1]} to {counts[i]}: a migration lost or repeated the application's work");
            }
        }
    }
}
