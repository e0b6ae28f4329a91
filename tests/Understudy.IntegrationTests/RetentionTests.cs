using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// A group launched by hand, without a policy, keeps the agent's default number of checkpoints
/// (--retention, 3): before, it kept every one, and a few migrations of a 1 GiB group filled the disk.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RetentionTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public RetentionTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task GroupWithoutPolicy_KeepsTheThreeNewestCheckpoints_AndTheNewestRestores()
    {
        await using var g = _fx.OpenGroup("retention", _out);
        string[] tags = ["count"], roles = ["counter"];
        await g.Launch("counter", Repo.Workload("wl_counter"));
        var taken = new List<CheckpointTaken>();
        for (int i = 0; i < 5; i++)
        {
            // Full ones: no checkpoint needs another, so exactly the newest three are kept.
            taken.Add(await g.Checkpoint(tags, members: 1, full: true));
        }

        var listed = (await g.Run("images", "list", g.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).Order().ToList();
        Assert.Equal(taken.TakeLast(3).Select(t => t.Id).Order(), listed);

        var members = await g.WaitForMembers(m => m.Count == 1, "the counter");
        await g.KillMembers(members);
        await g.RestoreAndVerify(taken[^1], tags, roles);
    }
}

/// <summary>Retention of an incremental chain, on an agent whose merges each wait 5 s before they commit.</summary>
[Trait("Category", "Integration")]
public sealed class ChainRetentionTests : IClassFixture<AgentWithSlowMerges>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public ChainRetentionTests(AgentWithSlowMerges fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    // Incremental checkpoints keep their bases until the background merges make them full; then
    // those bases are not needed any more, and retention deletes them without waiting for the next
    // checkpoint (before, five merged images stayed where three were asked for). Merges are slowed
    // down, so that the five checkpoints are taken before any of them is merged.
    [Fact, Trait("Category", "Integration")]
    public async Task IncrementalChain_OnceMerged_TheBasesBeyondTheThreeNewestAreDeleted()
    {
        await using var g = _fx.OpenGroup("retention-chain", _out);
        string[] tags = ["count"], roles = ["counter"];
        await g.Launch("counter", Repo.Workload("wl_counter"));
        var taken = new List<CheckpointTaken>();
        for (int i = 0; i < 5; i++)
        {
            taken.Add(await g.Checkpoint(tags, members: 1));
        }
        var listed = (await g.Run("images", "list", g.Name)).Ok().Json.Array("checkpoints").ToList();
        Assert.True(listed.Count == 5 && listed.Skip(1).All(c => c.Str("kind") == "incremental"),
            $"the five checkpoints were to be taken before any was merged: {string.Join(", ", listed.Select(c => $"{c.Str("id")} {c.Str("kind")}"))}");

        var newest = taken.TakeLast(3).Select(t => t.Id).Order().ToList();
        await g.WaitUntil(async () =>
            (await g.Run("images", "list", g.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).Order().SequenceEqual(newest),
            $"only checkpoints {string.Join(", ", newest)} left once merged");

        var members = await g.WaitForMembers(m => m.Count == 1, "the counter");
        await g.KillMembers(members);
        await g.RestoreAndVerify(taken[^1], tags, roles);
    }
}

/// <summary>
/// An agent whose merges wait 5 s before they commit (fault injection slow-merge:5), and whose
/// chains of increments do not end early for their size (a small program's increments weigh much
/// against its full image).
/// </summary>
public sealed class AgentWithSlowMerges() : AgentFixture(
    new Dictionary<string, string> { ["UNDERSTUDY_AGENT_FAULT"] = "slow-merge:5" }, "--chain-limit", "10000");
