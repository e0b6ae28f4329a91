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
