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

    /// <summary>
    /// Issue 11, item 2: the 256 MiB counter and the bash → exec → fork → exec family run on node-a
    /// under a policy with standby node-b and checkpoints every second. Once node-a's copy is stopped,
    /// node-b restores the newest checkpoint it holds: every counter goes on from it with no gap and no
    /// repeat, each process is the program it had become, with its pid, and memory verifies.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task PolicyWithStandbyEverySecond_StandbyRestoresTheNewestCopy() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        const string name = "every-second";
        string[] tags = ["count", "parent count", "child count"], roles = ["memory", "exec-parent", "exec-child"];
        var a = lab.Node(Primary);
        var onPrimary = lab.On(a);
        var policy = Path.Combine(lab.Dir, name + ".yaml");
        await File.WriteAllTextAsync(policy, $"""
            group: {name}
            standby: {Standby}
            checkpoints:
              interval: 1s
            apps:
              - name: memory
                command: {Repo.Workload("wl_memory")}
                args: ["256"]
              - name: script
                command: {Repo.Workload("wl_script.sh")}
            """);
        File.SetUnixFileMode(policy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (await onPrimary.Run("group", "apply", "-f", policy)).Ok();
        (await onPrimary.Run("group", "start", name)).Ok();
        foreach (var tag in tags)
        {
            await LabSession.WaitForCount(a, name, tag, 3);
        }
        var before = (await onPrimary.Run("status", name)).Ok().Json.Array("groups").SelectMany(g => g.Array("members")).Select(Member.From).ToList();

        // The scheduled checkpoints reach node-b: wait for three there, then stop the group on node-a.
        var onStandby = lab.On(lab.Node(Standby));
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while ((await Replicated(onStandby, name)).Count < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, $"node-b did not get three checkpoints of {name}: {string.Join(' ', await Replicated(onStandby, name))}");
            await Task.Delay(500);
        }
        (await onPrimary.Run("group", "stop", name)).Ok();
        // What node-a committed before the stop still reaches node-b: the newest there is node-a's newest.
        var newest = (await Replicated(onPrimary, name))[^1];
        deadline = DateTime.UtcNow + Timeouts.Wait;
        while ((await Replicated(onStandby, name)) is var held && held[^1] != newest)
        {
            Assert.True(DateTime.UtcNow < deadline, $"node-b did not get {newest}, node-a's newest checkpoint of {name}: {string.Join(' ', held)}");
            await Task.Delay(200);
        }

        // Each counter's value at the checkpoint: the last one printed before the members' stdout offset in it.
        var log = a.Log(name);
        var at = (await onStandby.Run("images", "inspect", name, newest)).Ok().Json.Array("members")
            .SelectMany(m => m.Array("fds")).Where(fd => fd.Long("fd") == 1).Max(fd => fd.Long("pos")!.Value);
        var saved = tags.ToDictionary(tag => tag, tag => log.LastCount(tag, at) ?? throw new Xunit.Sdk.XunitException($"no \"{tag} N\" before offset {at}"));

        var mark = log.Length;
        log.FollowTo(lab.Node(Standby).Log(name).Path);
        var restored = (await onStandby.Run("restore", name)).Ok().Json;
        Assert.Equal(newest, restored.Str("id"));
        foreach (var tag in tags)
        {
            await LabSession.WaitUntil(() => log.Counts(tag, mark).Count >= 3, $"3 \"{tag} N\" on node-b after the restore", () => log.Tail(10));
            var after = log.Counts(tag, mark);
            Assert.Equal(Enumerable.Range(0, after.Count).Select(k => saved[tag] + 1 + k), after);
        }
        var members = (await onStandby.Run("status", name)).Ok().Json.Array("groups").SelectMany(g => g.Array("members")).Select(Member.From).ToList();
        Assert.Equal(before.Select(m => (m.Pid, m.Program)).Order(), members.Select(m => (m.Pid, m.Program)).Order());
        Assert.Contains(members, m => m.Program?.EndsWith("wl_exec_child", StringComparison.Ordinal) == true);
        await lab.VerifyInNode(Standby, members.Select(m => (long)m.HostPid), roles, log);
        Assert.Null(log.FirstFail());
        (await onStandby.Run("stop", name)).Ok();
    });

    /// <summary>The committed checkpoints of <paramref name="group"/> a node holds, oldest first.</summary>
    private static async Task<IReadOnlyList<string>> Replicated(Hactl onNode, string group)
    {
        var listed = await onNode.Run("images", "list", group);
        return listed.ExitCode != 0 ? [] : listed.Json.Array("checkpoints").Select(c => c.Str("id")!).ToList();
    }

    /// <summary>
    /// Issue 11, item 3: the link between node-a and its standby is cut (`lab partition`) in the
    /// middle of a 1 GiB full image, then healed. The transfer resumes where it stopped: what node-b
    /// holds is not sent again, so the bytes sent in all stay under 1.5 times the image. node-b's copy
    /// then restores there: the counter goes on from the checkpoint and memory verifies.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task LinkCutMidFullImage_TransferResumesOnceHealed_StandbyRestores() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        const string name = "resumed";
        var a = lab.Node(Primary);
        var onPrimary = lab.On(a);
        var launched = (await onPrimary.Run("launch", name, "--app", "memory", "--standby", Standby, "--", Repo.Workload("wl_memory"), "1024")).Ok().Json;
        var log = a.Log(name);
        await LabSession.WaitForCount(a, name, "count", 3);

        // The image goes to node-b while it is written; the link is cut once a quarter of it is there.
        var printedBefore = log.LastCount("count") ?? 0;
        var checkpoint = onPrimary.Run("checkpoint", name);
        var staging = Path.Combine(lab.Node(Standby).GroupDir(name), "staging");
        await LabSession.WaitUntil(() => Received(staging) >= 256L << 20 || checkpoint.IsCompleted, "node-b receiving the first 256 MiB of the image");
        (await lab.Lab("partition", lab.Dir, Standby)).Ok();
        var atCut = Received(staging);
        var full = (await checkpoint).Ok().Json;
        var (id, bytes) = (full.Str("id")!, full.Long("bytes")!.Value);
        var printedAfter = log.LastCount("count") ?? 0;
        lab.Note($"checkpoint {id}: {bytes} bytes, {atCut} of them on node-b when the link was cut");
        Assert.True(atCut < bytes * 9 / 10, $"the link was cut only after node-b had {atCut} of {bytes} bytes");

        await StandbyReplication.WaitAsync(onPrimary, name, r => r.Str("state") == "unreachable", "node-b unreachable");
        (await lab.Lab("heal", lab.Dir, Standby)).Ok();
        var replication = await StandbyReplication.WaitInSync(onPrimary, name, id);
        var sent = replication.Long("bytesSent") ?? 0;
        lab.Note($"sent {sent} bytes in all for a {bytes}-byte image ({(double)sent / bytes:F2}x)");
        Assert.True(sent >= bytes, $"at least the image was sent: {sent} of {bytes}");
        Assert.True(sent < bytes * 3 / 2, $"a resumed transfer sends less than 1.5x the image: {sent} bytes for {bytes}");
        Assert.Contains("already; going on from there", File.ReadAllText(Path.Combine(lab.Dir, "nodes", Primary, "agent.log")));

        (await onPrimary.Run("stop", name)).Ok();
        var onStandby = lab.On(lab.Node(Standby));
        var mark = log.Length;
        log.FollowTo(lab.Node(Standby).Log(name).Path);
        var restored = (await onStandby.Run("restore", name)).Ok().Json;
        Assert.Equal(id, restored.Str("id"));
        var member = Assert.Single(restored.Array("members"));
        Assert.Equal(launched.Long("pid"), member.Long("pid"));
        await LabSession.WaitUntil(() => log.Counts("count", mark).Count >= 3, "3 counts on node-b after the restore", () => log.Tail(10));
        var after = log.Counts("count", mark);
        Assert.InRange(after[0], printedBefore + 1, printedAfter + 1);
        Assert.True(after.Zip(after.Skip(1)).All(p => p.Second == p.First + 1), $"counts after the restore skip or repeat: {string.Join(' ', after)}");
        await lab.VerifyInNode(Standby, [member.Long("hostPid")!.Value], ["memory"], log);
        Assert.Null(log.FirstFail());
        (await onStandby.Run("stop", name)).Ok();
    });

    /// <summary>The bytes node-b has received of checkpoints still being received.</summary>
    private static long Received(string staging)
    {
        try
        {
            return Directory.Exists(staging) ? Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length) : 0;
        }
        catch (IOException)
        {
            return 0; // committed meanwhile: moved out of staging (the test then finds no resumed transfer)
        }
    }

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
