using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// A lab is a cluster (docs/lab.md): a group on node-a with standby node-b streams its
/// checkpoints over the lab's network, survives a fault of node-a on node-b, and catches up after
/// node-b was cut off. Real namespaces, real agents, the lab's bridge; each test brings its own lab
/// up and checks that nothing of it is left once it is down.
/// </summary>
public sealed class LabStandbyTests(ITestOutputHelper output)
{
    private const string Primary = "node-a", Standby = "node-b";
    private static readonly string[] Roles = ["counter-c", "memory"];

    [Fact, Trait("Category", "Integration")]
    public Task GroupWithStandby_StreamsItsCheckpointsOverTheLabNetwork() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await LaunchWithStandby(lab, "streamed");
        var full = (await Checkpoint(lab, group)).Id;
        await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, full);
        var newest = (await Checkpoint(lab, group)).Id;
        var replication = await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, newest);
        Assert.Equal(Standby, replication.Str("standby"));

        var text = (await group.OnPrimary.Run(["status", group.Name], json: false)).Ok().Stdout;
        Assert.Contains($"standby {Standby}: in sync (checkpoint {newest})", text);

        var listed = (await lab.On(lab.Node(Standby)).Run("images", "list", group.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).ToList();
        Assert.Equal([full, newest], listed);
        Assert.True(Directory.Exists(Path.Combine(lab.Node(Standby).GroupDir(group.Name), "checkpoints", newest)),
            "the copy is in node-b's own state directory");

        // Over the lab's network: node-b's agent serves its peers on its lab address alone, in its own network
        // namespace, which the host cannot reach (docs/lab.md).
        var listening = (await lab.Exec(Standby, "ss", "-Htln")).Ok().Stdout;
        Assert.Contains(lab.Node(Standby).PeerAddress, listening);
        Assert.Contains($"from node {Primary}", File.ReadAllText(Path.Combine(lab.Dir, "nodes", Standby, "agent.log")));
    });

    [Fact, Trait("Category", "Integration")]
    public Task PrimaryNodeCrashes_StandbyRestoresTheGroupFromItsCopy() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await LaunchWithStandby(lab, "failover");
        var printedBefore = group.Log.LastCount("c count") ?? 0;
        var id = (await Checkpoint(lab, group)).Id;
        var printedAfter = group.Log.LastCount("c count") ?? 0;
        await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, id);

        (await lab.Lab("crash", lab.Dir, Primary)).Ok();
        (await group.OnPrimary.Run("status")).FailsWithOneLine();

        var onStandby = lab.On(lab.Node(Standby));
        var mark = group.Log.Length;
        group.Log.FollowTo(lab.Node(Standby).Log(group.Name).Path);
        var restored = (await onStandby.Run("restore", group.Name)).Ok().Json;
        Assert.Equal(id, restored.Str("id"));
        var members = restored.Array("members").ToList();
        Assert.Equal(group.Pids, members.Select(m => (int)m.Long("pid")!.Value).Order());

        // The counter goes on from its checkpoint: after what it had printed before the checkpoint was
        // asked for, at most one past what it had printed once the checkpoint was taken; then one by one.
        await LabSession.WaitUntil(() => group.Log.Counts("c count", mark).Count >= 3, "3 counts on node-b after the restore", () => group.Log.Tail(10));
        var after = group.Log.Counts("c count", mark);
        output.WriteLine($"printed {printedBefore} before the checkpoint, {printedAfter} after it; on node-b: {string.Join(' ', after)}");
        Assert.InRange(after[0], printedBefore + 1, printedAfter + 1);
        Assert.True(after.Zip(after.Skip(1)).All(p => p.Second == p.First + 1), $"counts after the restore skip or repeat: {string.Join(' ', after)}");

        // Each member checks its own memory and counter (SIGUSR1, inside node-b: the pids are the node's).
        await lab.VerifyInNode(Standby, members.Select(m => m.Long("hostPid")!.Value), Roles, group.Log);

        Assert.Null(group.Log.FirstFail());
        (await onStandby.Run("stop", group.Name)).Ok();
    });

    [Fact, Trait("Category", "Integration")]
    public Task StandbyPartitioned_StatusSaysUnreachable_HealCatchesUp() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await LaunchWithStandby(lab, "partitioned");
        await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, (await Checkpoint(lab, group)).Id);

        (await lab.Lab("partition", lab.Dir, Standby)).Ok();
        var missed = (await Checkpoint(lab, group)).Id; // the group runs on and its checkpoints are taken
        var cut = await StandbyReplication.WaitAsync(group.OnPrimary, group.Name,
            r => r.Str("state") == "unreachable" && r.Long("behindCheckpoints") >= 1, "unreachable, behind by a checkpoint");
        Assert.False(string.IsNullOrEmpty(cut.Str("unreachableSince")), $"status says since when: {cut}");
        Assert.Contains(Standby, cut.Str("error") ?? "");
        var text = (await group.OnPrimary.Run(["status", group.Name], json: false)).Ok().Stdout;
        Assert.Contains($"standby {Standby}: unreachable since", text);

        (await lab.Lab("heal", lab.Dir, Standby)).Ok();
        await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, missed);
        var listed = (await lab.On(lab.Node(Standby)).Run("images", "list", group.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).ToList();
        Assert.Equal(missed, listed.Last());
        (await group.OnPrimary.Run("stop", group.Name)).Ok();
    });

    /// <summary>
    /// A standby node that crashed leaves the group running and its checkpoints taken; status says since when
    /// the standby is unreachable and how far behind it is; once node-b is started again, it catches up with
    /// the checkpoints it never got.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task StandbyNodeCrashed_CheckpointsGoOn_CatchesUpOnceStartedAgain() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await LaunchWithStandby(lab, "standby-down");
        (await lab.Lab("crash", lab.Dir, Standby)).Ok();
        var first = await Checkpoint(lab, group);
        var second = await Checkpoint(lab, group);
        var down = await StandbyReplication.WaitAsync(group.OnPrimary, group.Name,
            r => r.Str("state") == "unreachable" && r.Long("behindCheckpoints") == 2, "unreachable, behind by 2 checkpoints");
        Assert.False(string.IsNullOrEmpty(down.Str("unreachableSince")), $"status says since when: {down}");
        Assert.True(down.Long("behindBytes") >= first.Bytes + second.Bytes, $"behind by both checkpoints' bytes: {down}");
        Assert.Contains(Standby, down.Str("error") ?? "");

        (await lab.Lab("start", lab.Dir, Standby)).Ok();
        await StandbyReplication.WaitInSync(group.OnPrimary, group.Name, second.Id);
        var listed = (await lab.On(lab.Node(Standby)).Run("images", "list", group.Name)).Ok().Json.Array("checkpoints").Select(c => c.Str("id")).ToList();
        Assert.Equal(second.Id, listed.Last()); // with its chain, or alone once node-a merged it
        (await group.OnPrimary.Run("stop", group.Name)).Ok();
    });

    /// <summary>A group on node-a: a counter and a 16 MiB memory workload, launched with --standby node-b.</summary>
    private static async Task<LabGroup> LaunchWithStandby(LabSession lab, string name)
    {
        var a = lab.Node(Primary);
        var hactl = lab.On(a);
        var counter = (await hactl.Run("launch", name, "--app", "counter", "--standby", Standby, "--", Repo.Workload("wl_counter"), "c")).Ok().Json;
        var memory = (await hactl.Run("launch", name, "--app", "memory", "--", Repo.Workload("wl_memory"), "16")).Ok().Json;
        var group = new LabGroup(name, hactl, a.Log(name), [.. new[] { counter, memory }.Select(m => (int)m.Long("pid")!.Value).Order()]);
        await LabSession.WaitForCount(a, name, "c count", 3);
        await LabSession.WaitForCount(a, name, "count", 3);
        return group;
    }

    private static async Task<Taken> Checkpoint(LabSession lab, LabGroup group)
    {
        var checkpoint = (await group.OnPrimary.Run("checkpoint", group.Name)).Ok().Json;
        Assert.Equal(2, checkpoint.GetProperty("members").GetInt32());
        lab.Note($"checkpoint {checkpoint.Str("id")} ({checkpoint.Str("kind")}, {checkpoint.Long("bytes")} bytes)");
        return new Taken(checkpoint.Str("id")!, checkpoint.Long("bytes")!.Value);
    }

    private sealed record Taken(string Id, long Bytes);

    /// <param name="Log">its output.log on node-a, followed by node-b's once restored there</param>
    /// <param name="Pids">its members' pids (in its pid namespace), in order</param>
    private sealed record LabGroup(string Name, Hactl OnPrimary, GroupLog Log, IReadOnlyList<int> Pids);
}
