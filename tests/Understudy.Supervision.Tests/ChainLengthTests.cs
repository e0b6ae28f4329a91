using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// A policy's checkpoints.fullEvery decides how long its group's chains of incremental
/// checkpoints are, also beyond the agent's --full-every (8): a group checkpointed often for its
/// standby (issue 11: every 100 ms) must not write, freeze for and stream a whole image every ninth
/// checkpoint. Before, the ninth incremental was full whatever the policy said. (wl_dirty changes
/// nothing unless asked, so the chain stays far below --chain-limit; retention keeps every checkpoint,
/// so that the chain is counted back to the full one.)
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class ChainLengthTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task PolicyFullEveryTwenty_TwelveScheduledCheckpoints_OnlyTheFirstIsFull()
    {
        await using var g = fx.Group("chain", output);
        (await g.Apply($$"""
            group: {{g.Name}}
            checkpoints:
              interval: 200ms
              fullEvery: 20
              retention: 50
            apps:
              - name: dirty
                command: {{Repo.Workload("wl_dirty")}}
                args: ["16"]
            """)).Ok();
        var start = await g.Mark();
        (await g.Run("group", "start", g.Name)).Ok();
        var taken = await g.WaitForEvents("checkpoint.taken", start, 12);
        var kinds = taken.Take(12).Select(e => e.Field("kind")).ToList();
        Assert.True(kinds[0] == "full" && kinds.Skip(1).All(k => k == "incremental"),
            $"kinds of the first 12 scheduled checkpoints: {string.Join(' ', kinds)}");
        (await g.Run("group", "stop", g.Name)).Ok();
    }
}
