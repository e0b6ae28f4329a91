using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 4: the newest checkpoint is corrupt. An automatic recovery used to retry that
/// same image until the group was marked failed; it restores the previous checkpoint instead,
/// within the same attempt, and says so in the events.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class CorruptCheckpointRecoveryTests(SupervisionFixture fx, ITestOutputHelper output)
{
    [Fact]
    public async Task NewestCheckpointCorrupt_RecoveryRestoresThePreviousOne_AndSaysSo()
    {
        await using var g = fx.Group("corrupt", output);
        string Policy(string interval) => $$"""
            group: {{g.Name}}
            checkpoints: { interval: {{interval}}, retention: 20 }
            recovery: { action: restore, maxAttempts: 1, window: 10m }
            apps:
              - name: svc
                command: {{Workloads.Service}}
                args: [svc]
            """;
        (await g.Apply(Policy("300ms"))).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        await g.WaitForEvents("checkpoint.taken", await g.Mark(), 3);
        // No more checkpoints: the newest stays the newest.
        (await g.Apply(Policy("1h"))).Ok();

        var (previous, newest) = await NewestTwoSettled(g);
        var pages = Directory.GetFiles(Path.Combine(g.Dir, "checkpoints", newest), "*.pages").First(f => new FileInfo(f).Length > 0);
        await using (var file = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            var b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0xff));
        }
        Assert.True((await g.Run("images", "verify", g.Name, newest)).ExitCode != 0, $"checkpoint {newest} still verifies");

        var mark = await g.Mark();
        var svc = Assert.Single(await g.Members());
        await g.Kill9(svc.HostPid);

        var finished = await g.WaitForEvent("recovery.finished", mark);
        Assert.Equal(previous, finished.Field("checkpointId"));
        var events = await g.Events(mark);
        var fallback = Assert.Single(events, e => e.Type == "recovery.fallback");
        Assert.Equal(newest, fallback.Field("checkpointId"));
        Assert.Equal(previous, fallback.Field("next"));
        Assert.Contains("checksum", fallback.Field("reason"));
        Assert.Single(events, e => e.Type == "recovery.started");
        Assert.DoesNotContain(events, e => e.Type is "recovery.failed" or "group.failed");
        var after = Assert.Single(await g.Members());
        Assert.Equal(svc.Pid, after.Pid);
        await g.Verify([after], "service-svc");
    }

    /// <summary>The ids of the two newest checkpoints, once neither is still to be merged (a merge rewrites the files).</summary>
    private static async Task<(string Previous, string Newest)> NewestTwoSettled(SupervisedGroup g)
    {
        (string, string)? found = null;
        await g.WaitUntil(async () =>
        {
            var list = (await g.Run("images", "list", g.Name)).Ok().Json.GetProperty("checkpoints").EnumerateArray()
                .Select(c => (Id: c.GetProperty("id").GetString()!, Kind: c.GetProperty("kind").GetString()!))
                .ToList();
            if (list.Count < 2 || list[^2..].Any(c => c.Kind == "incremental"))
            {
                return false;
            }
            found = (list[^2].Id, list[^1].Id);
            return true;
        }, "the two newest checkpoints merged");
        return found!.Value;
    }
}
