using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// `hactl migrate` between the nodes of a real lab (network, mount and pid namespaces; the lab's
/// bridge): a running group moves from node-a to node-b with its pids, its counters unbroken and its
/// memory verified there, and nothing of it runs on node-a any more.
/// </summary>
public sealed class LabMigrationTests(ITestOutputHelper output)
{
    private const string From = "node-a", To = "node-b";
    private static readonly string[] Roles = ["counter-c", "memory"];

    [Fact, Trait("Category", "Integration")]
    public Task RunningGroup_MigratesOverTheLabNetwork_SamePids_Unbroken_Verified() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        const string name = "moving";
        var a = lab.Node(From);
        var onA = lab.On(a);
        var counter = (await onA.Run("launch", name, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok().Json;
        var memory = (await onA.Run("launch", name, "--app", "memory", "--", Repo.Workload("wl_memory"), "16")).Ok().Json;
        int[] pids = [.. new[] { counter, memory }.Select(m => (int)m.Long("pid")!.Value).Order()];
        var log = a.Log(name);
        await LabSession.WaitForCount(a, name, "c count", 3);
        await LabSession.WaitForCount(a, name, "count", 3);

        var moved = (await onA.Run("migrate", name, "--to", To)).Ok().Json;
        output.WriteLine($"migrate: {moved}");
        Assert.Equal(To, moved.Str("to"));
        Assert.Equal(2, moved.GetProperty("members").GetInt32());

        var onB = lab.On(lab.Node(To));
        var members = (await onB.Run("status", name)).Ok().Json.Array("groups").Single().Array("members").ToList();
        Assert.Equal(pids, members.Select(m => (int)m.Long("pid")!.Value).Order());
        Assert.Empty((await onA.Run("status", name)).Ok().Json.Array("groups").SelectMany(g => g.Array("members")));

        // The counters go on there, one by one from where they were: nothing lost, nothing run twice.
        var mark = log.Length;
        await LabSession.WaitUntil(() => log.Counts("c count", mark).Count >= 3, "3 counts on node-b", () => log.Tail(10));
        foreach (var tag in new[] { "c count", "count" })
        {
            var counts = log.Counts(tag, 0);
            Assert.True(counts.Zip(counts.Skip(1)).All(p => p.Second == p.First + 1), $"\"{tag}\" skips or repeats across the move: {string.Join(' ', counts.TakeLast(30))}");
        }

        // Each member checks its own memory and counter (SIGUSR1, inside node-b: the pids are the node's).
        await lab.VerifyInNode(To, members.Select(m => m.Long("hostPid")!.Value), Roles, log);
        Assert.Null(log.FirstFail());
        (await onB.Run("stop", name)).Ok();
    });
}
