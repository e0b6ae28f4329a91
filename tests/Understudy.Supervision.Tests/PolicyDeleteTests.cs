using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// hactl group delete: a running group keeps its policy (one-line error, nothing changed); a
/// stopped one loses it, with its supervision, and keeps its checkpoints.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class PolicyDeleteTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task RunningGroup_IsRefused_StoppedGroup_LosesItsPolicy_AndKeepsItsCheckpoints()
    {
        await using var g = fx.Group("delete", output);
        var policy = $$"""
            group: {{g.Name}}
            apps:
              - name: svc
                command: {{Workloads.Service}}
                args: [svc]
            """;
        (await g.Apply(policy)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        (await g.Run("checkpoint", g.Name)).Ok();
        var stored = Path.Combine(fx.Agent.StateDir, "policies", g.Name + ".yaml");
        Assert.True(File.Exists(stored));

        var refused = (await g.Run("group", "delete", g.Name)).FailsWithOneLine();
        Assert.Contains($"cannot delete group {g.Name}", refused.Stderr);
        Assert.Contains($"is running; stop it first with: hactl group stop {g.Name}", refused.Stderr);
        Assert.True(File.Exists(stored));
        Assert.Equal("running", (await g.Status()).Prop("availability")?.Str("state"));

        (await g.Run("group", "stop", g.Name)).Ok();
        var mark = await g.Mark();
        var deleted = (await g.Run("group", "delete", g.Name)).Ok().Json;
        Assert.Equal(g.Name, deleted.Str("group"));
        Assert.Equal(g.Dir, deleted.Str("imagesDir"));

        Assert.False(File.Exists(stored), $"{stored} is still there");
        Assert.Single(await g.Events(mark), e => e.Type == "policy.deleted");
        var show = (await g.Run("group", "show", g.Name)).FailsWithOneLine();
        Assert.Contains("has no policy", show.Stderr);
        Assert.Contains("has no policy", (await g.Run("group", "start", g.Name)).FailsWithOneLine().Stderr);
        Assert.Contains("has no policy", (await g.Run("group", "delete", g.Name)).FailsWithOneLine().Stderr);
        Assert.NotEmpty((await g.Run("images", "list", g.Name)).Ok().Json.Array("checkpoints"));

        // The group can be given a policy again.
        var again = (await g.Apply(policy)).Ok().Json;
        Assert.True(again.Prop("created")?.GetBoolean());
    }
}
