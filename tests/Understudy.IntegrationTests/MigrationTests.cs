using System.Globalization;
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

        var there = await Migrate(onA, onB, StandbyPair.StandbyNode);
        Assert.True(there.Rounds >= 2, $"a pre-copy round, then the frozen one: {there.Json}");
        Assert.True(there.Bytes >= 64L << 20, $"the 64 MiB buffer crossed the link: {there.Json}");
        await AssertRunsOn(onB, launched.Pid, roles);
        Assert.Empty(await onA.Members());

        // The roles swapped: node-b streams the group's checkpoints to node-a.
        var taken = (await onB.Run("checkpoint", onB.Name)).Ok().Json.Str("id")!;
        var replication = await StandbyStreamingTests.WaitReplication(
            onB, r => r.Str("state") == "in-sync" && r.Str("lastReplicated") == taken, $"checkpoint {taken} replicated to node-a");
        Assert.Equal(StandbyPair.PrimaryNode, replication.Str("standby"));

        var back = await Migrate(onB, onA, StandbyPair.PrimaryNode);
        // node-a held the chain up to the takeover: only what node-b wrote since crossed back.
        var ownOnB = (await ImagesAfter(onB, there.Json.Str("checkpointId")!)).ToList();
        Assert.True(back.Bytes <= ownOnB.Sum(c => c.Bytes),
            $"{back.Bytes} bytes crossed back, more than node-b's own checkpoints hold ({string.Join(", ", ownOnB)})");
        await AssertRunsOn(onA, launched.Pid, roles);
        Assert.Empty(await onB.Members());

        long mark = onA.Log.Length;
        await onA.WaitForCounts("count", 5, mark);
        AssertUnbroken(onA, "count");
    }

    /// <summary>
    /// The target refuses the group (it has a policy of its own for it, and the group has none): it
    /// says so when asked to get ready, before the last round freezes the group, which runs on on the
    /// source: same pid, memory verifies, its counter goes on unbroken; migrate fails with one line
    /// that says so.
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
        Assert.Contains("has a policy of its own", failed.Stderr);
        Assert.Contains("the group ran on here throughout", failed.Stderr);

        var members = await onA.WaitForMembers(m => m.Count == 1, "the group still on node-a");
        Assert.Equal(launched.Pid, members.Single().Pid);
        long mark = onA.Log.Length;
        await onA.WaitForCounts("count", 5, mark);
        await onA.Verify(members, roles);
        AssertUnbroken(onA, "count");
        var events = (await onA.Run("events", onA.Name)).Ok().Stdout;
        Assert.Contains("migration.failed", events);
    }

    /// <summary>
    /// The target's agent dies while the first round is on its way (kill -9 once it holds part of
    /// it): migrate fails with one line, and the group never stopped running on the source.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetDiesMidMigration_GroupRunsOnAtTheSource()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate-dies", _out);
        string[] roles = { "memory" };
        var launched = await onA.Launch("memory", Repo.Workload("wl_memory"), "256");
        await onA.WaitForCounts("count", 3, 0);
        var staging = Path.Combine(_pair.Standby.GroupDir(onA.Name), "staging");

        var migrate = onA.Run("migrate", onA.Name, "--to", StandbyPair.StandbyNode);
        try
        {
            await onA.WaitUntil(
                () => migrate.IsCompleted || (Directory.Exists(staging) && Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories).Any(f => new FileInfo(f).Length > 0)),
                "node-b receiving the first round");
            if (migrate.IsCompleted)
            {
                throw onA.Failure($"the migration ended before node-b was killed: {await migrate}");
            }
            await _pair.Standby.KillAgentAsync();
            var failed = (await migrate).FailsWithOneLine();
            Assert.Contains(StandbyPair.StandbyNode, failed.Stderr);
            Assert.Contains("the group ran on here throughout", failed.Stderr);
        }
        finally
        {
            await _pair.Standby.StartAgentAsync(null, _pair.StandbyArgs);
        }

        var members = await onA.WaitForMembers(m => m.Count == 1, "the group still on node-a");
        Assert.Equal(launched.Pid, members.Single().Pid);
        long mark = onA.Log.Length;
        await onA.WaitForCounts("count", 5, mark);
        await onA.Verify(members, roles);
        AssertUnbroken(onA, "count");
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

    internal sealed record Image(string Id, string Kind, long Bytes);

    /// <summary>The group's checkpoints on that node with an id after <paramref name="id"/>, from `hactl images list`.</summary>
    /// <summary>
    /// The checkpoints the node took of the group after checkpoint <paramref name="id"/>, from its
    /// events: retention may have deleted the oldest of them since.
    /// </summary>
    internal static async Task<IEnumerable<Image>> ImagesAfter(GroupSession on, string id) =>
        (await on.Run("events", on.Name)).Ok().Json.Array("events")
            .Where(e => e.Str("type") == "checkpoint.taken")
            .Select(e => e.GetProperty("fields"))
            .Select(f => new Image(f.Str("checkpointId")!, f.Str("kind")!, long.Parse(f.Str("bytes")!, CultureInfo.InvariantCulture)))
            .Where(c => string.CompareOrdinal(c.Id, id) > 0);

    private async Task<Migration> Migrate(GroupSession from, GroupSession target, string to)
    {
        target.TakesOver();
        var json = (await from.Run("migrate", from.Name, "--to", to)).Ok().Json;
        _out.WriteLine($"migrate {from.Name} --to {to}: {json}");
        Assert.Equal(to, json.Str("to"));
        var migration = new Migration((int)(json.Long("rounds") ?? 0), json.Long("bytes") ?? 0, json.GetProperty("frozenMs").GetDouble(), json.Clone());
        Assert.True(migration.FrozenMs > 0, $"frozenMs: {json}");
        Assert.True(json.GetProperty("durationMs").GetDouble() >= migration.FrozenMs, $"durationMs covers frozenMs: {json}");
        return migration;
    }

    internal static async Task AssertRunsOn(GroupSession on, int pid, string[] roles)
    {
        var members = await on.WaitForMembers(m => m.Count == 1, "the group's process on the target");
        Assert.Equal(pid, members.Single().Pid);
        long mark = on.Log.Length;
        await on.WaitForCounts("count", 3, mark);
        await on.Verify(members, roles);
    }

    /// <summary>Every "TAG N" line of the group's log, from the first: N, N+1, N+2, ... with no gap and no repeat.</summary>
    internal static void AssertUnbroken(GroupSession group, string tag)
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

/// <summary>
/// A migration whose link breaks two thirds into its first round (node-b's agent cuts the push
/// after 176 MiB of a 256 MiB group, once): the send goes on from what node-b holds, nothing is
/// sent twice, and the group moves with nothing lost.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MigrationResumeTests : IClassFixture<StandbyPairWithBrokenLink>
{
    private readonly StandbyPairWithBrokenLink _pair;
    private readonly ITestOutputHelper _out;

    public MigrationResumeTests(StandbyPairWithBrokenLink pair, ITestOutputHelper output) => (_pair, _out) = (pair, output);

    [Fact, Trait("Category", "Integration")]
    public async Task LinkCutInTheFirstRound_SendResumes_GroupMoves()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate-cut", _out);
        await using var onB = new GroupSession(_pair.Standby, onA.Name, _out, onA.Log);
        var launched = await onA.Launch("memory", Repo.Workload("wl_memory"), "256");
        await onA.WaitForCounts("count", 3, 0);

        onB.TakesOver();
        var json = (await onA.Run("migrate", onA.Name, "--to", StandbyPair.StandbyNode)).Ok().Json;
        _out.WriteLine($"migrate: {json}");
        Assert.Contains("Fault injection: cutting the connection", _pair.Standby.AgentLogText());
        // The cut push was the round's own send, or the one while its images were written; either way
        // the next one went on from what node-b held.
        var log = _pair.Primary.AgentLogText();
        Assert.True(log.Contains("going on from what it holds", StringComparison.Ordinal) || log.Contains("while it was written: ", StringComparison.Ordinal),
            "node-a's log says neither that a round's send broke off nor that one sent while written did");
        Assert.Contains("already; going on from there", log);
        // Each round's checkpoint crossed once; sending again what arrived before the cut would add 176 MiB.
        var rounds = (await MigrationTests.ImagesAfter(onA, "")).ToList();
        Assert.Equal(json.Long("rounds"), rounds.Count);
        var bytes = json.Long("bytes") ?? 0;
        Assert.True(bytes < rounds.Sum(c => c.Bytes) + StandbyPairWithBrokenLink.CutAfterBytes / 2,
            $"a resumed send does not send again what arrived: {bytes} bytes for rounds of {string.Join(", ", rounds)}");

        await MigrationTests.AssertRunsOn(onB, launched.Pid, ["memory"]);
    }
}

/// <summary>Two agents of one cluster whose node-b cuts its first takeover's connection once the group runs there.</summary>
public sealed class StandbyPairLosingTakeOverReply : StandbyPair
{
    public StandbyPairLosingTakeOverReply()
        : base(new Dictionary<string, string> { ["UNDERSTUDY_AGENT_FAULT"] = "drop-takeover-reply" })
    {
    }
}

/// <summary>
/// The answer to the takeover is lost: node-b runs the group, then the connection breaks before
/// node-a reads that it does. node-a must not resume its frozen copy (the group would run twice):
/// it asks node-b, learns the group runs there, and ends its own.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MigrationLostAnswerTests : IClassFixture<StandbyPairLosingTakeOverReply>
{
    private readonly StandbyPairLosingTakeOverReply _pair;
    private readonly ITestOutputHelper _out;

    public MigrationLostAnswerTests(StandbyPairLosingTakeOverReply pair, ITestOutputHelper output) => (_pair, _out) = (pair, output);

    [Fact, Trait("Category", "Integration")]
    public async Task TakeOverAnswerLost_SourceAsks_GroupRunsOnTheTargetOnly()
    {
        await using var onA = _pair.Primary.OpenGroup("migrate-lost", _out);
        await using var onB = new GroupSession(_pair.Standby, onA.Name, _out, onA.Log);
        var launched = await onA.Launch("memory", Repo.Workload("wl_memory"), "16");
        await onA.WaitForCounts("count", 3, 0);

        onB.TakesOver();
        var json = (await onA.Run("migrate", onA.Name, "--to", StandbyPair.StandbyNode)).Ok().Json;
        _out.WriteLine($"migrate: {json}");
        Assert.Contains("Fault injection: cutting the connection of the takeover", _pair.Standby.AgentLogText());
        Assert.Contains("to the takeover was lost", _pair.Primary.AgentLogText());

        await MigrationTests.AssertRunsOn(onB, launched.Pid, ["memory"]);
        Assert.Empty(await onA.Members());
        MigrationTests.AssertUnbroken(onB, "count");
    }
}
