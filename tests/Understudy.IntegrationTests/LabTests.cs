using System.Globalization;
using System.Text.Json;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// hactl lab (docs/lab.md): nodes on one machine, each a network, mount and pid namespace with
/// its own agent. Every test brings a lab up with the real hactl and takes it down on dispose.
/// </summary>
public sealed class LabTests(ITestOutputHelper output)
{
    private const int Port = 7000;

    [Fact, Trait("Category", "Integration")]
    public Task UpThenDown_LeavesNoProcessNamespaceLinkOrMountBehind() => LeavesNothingBehind(nodes: 3, async (lab, before, during) =>
    {
        output.WriteLine($"the lab: {during.Processes.Count} processes, namespaces {string.Join(' ', during.Namespaces)}");
        Assert.Equal(["node-a", "node-b", "node-c"], lab.Nodes.Select(n => n.Name));
        Assert.Equal(3, lab.Nodes.Select(n => n.Address).Distinct().Count());
        Assert.All(lab.Nodes, n => Assert.StartsWith("unix:" + lab.Dir + "/", n.Agent));
        Assert.All(lab.Nodes, n => Assert.StartsWith(lab.Dir + "/", n.StateDir));
        // 3 nodes x (network, mount, pid) + the switch's network namespace.
        Assert.True(during.Namespaces.Count >= 10, $"expected the namespaces of 3 nodes and a switch, got {string.Join(' ', during.Namespaces)}");
        Assert.Equal(before.HostLinks, during.HostLinks); // the host's network is never touched
        Assert.Equal(before.HostMounts, during.HostMounts);

        var down = (await lab.Lab("down", lab.Dir)).Ok();
        Assert.Contains("nothing of the lab runs", down.Stdout);
    });

    [Fact, Trait("Category", "Integration")]
    public Task Crash_KillsEveryProcessOfTheNode_ThenDownLeavesNothing() => LeavesNothingBehind(nodes: 2, async (lab, _, _) =>
    {
        var a = lab.Node("node-a");
        (await lab.On(a).Run("launch", "crashed", "--", Repo.Workload("wl_counter"), "c")).Ok();
        await WaitForCount(a, "crashed", "c count", 2);
        using var nodeA = await LabFootprint.TakeAsync(Path.Combine(lab.Dir, "nodes", "node-a"), pin: true);

        (await lab.Lab("crash", lab.Dir, "node-a")).Ok();

        Assert.Empty(LabFootprint.StillInUse(nodeA.Namespaces)); // the agent, its group, us-init: all gone
        var status = (await lab.Lab("status", lab.Dir, "--json")).Ok().Json.GetProperty("nodes");
        Assert.Equal(("crashed", "absent", false), NodeStatus(status, "node-a"));
        Assert.Equal(("up", "up", true), NodeStatus(status, "node-b"));
        (await lab.On(a).Run("status")).FailsWithOneLine();
        (await lab.On(lab.Node("node-b")).Run("status")).Ok();
        (await lab.Lab("crash", lab.Dir, "node-a")).FailsWithOneLine();

        // node-a comes back on its state directory: its agent answers and still lists the group's directory.
        (await lab.Lab("start", lab.Dir, "node-a")).Ok();
        status = (await lab.Lab("status", lab.Dir, "--json")).Ok().Json.GetProperty("nodes");
        Assert.Equal(("up", "up", true), NodeStatus(status, "node-a"));
        (await lab.On(a).Run("status")).Ok();
    });

    /// <summary>After a kill -9 of the keepers, their holders' zombies are reaped by whoever adopts them: not counted.</summary>
    [Fact, Trait("Category", "Integration")]
    public Task KillNineOfEveryLabProcess_ThenDownRemovesTheRest_AndTheLabComesUpAgain() => LeavesNothingBehind(nodes: 2, async (lab, before, during) =>
    {
        var pids = during.Processes.Select(p => int.Parse(p.Split(' ')[0], CultureInfo.InvariantCulture)).ToList();
        output.WriteLine($"kill -9 {string.Join(' ', pids)}");
        foreach (var pid in pids)
        {
            Native.Kill(pid, Native.SIGKILL);
        }

        (await lab.Lab("down", lab.Dir)).Ok();
        await AssertNothingLeft(lab.Dir, before, during, ignoreZombies: true);
        Assert.False(File.Exists(Path.Combine(lab.Dir, "lab.json")));

        // The same directory takes a new lab, whose agents find their state directories.
        await using var again = await LabSession.UpAsync(output, dir: lab.Dir);
        (await again.On(again.Node("node-b")).Run("status")).Ok();
    }, ignoreZombies: true);

    [Fact, Trait("Category", "Integration")]
    public Task Down_AfterTheDirectoryWasRemoved_StillRemovesTheLab() => LeavesNothingBehind(nodes: 1, async (lab, _, _) =>
    {
        Directory.Delete(lab.Dir, recursive: true); // lab.json with it: down finds the us-lab processes by their arguments
        (await lab.Lab("down", lab.Dir)).Ok();
    });

    [Fact, Trait("Category", "Integration")]
    public async Task GroupOnANode_RunsCheckpointsAndRestoresThere()
    {
        await using var lab = await LabSession.UpAsync(output);
        var a = lab.Node("node-a");
        var hactl = lab.On(a);
        const string group = "onnode";
        var counter = (await hactl.Run("launch", group, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok().Json;
        var memory = (await hactl.Run("launch", group, "--app", "memory", "--", Repo.Workload("wl_memory"), "16")).Ok().Json;
        await WaitForCount(a, group, "c count", 3);

        var checkpoint = (await hactl.Run("checkpoint", group)).Ok().Json;
        var id = checkpoint.GetProperty("id").GetString()!;
        Assert.Equal(2, checkpoint.GetProperty("members").GetInt32());
        Assert.True(Directory.Exists(Path.Combine(a.GroupDir(group), "checkpoints", id)), "the checkpoint is in node-a's own state directory");
        Assert.False(Directory.Exists(lab.Node("node-b").GroupDir(group)));
        var log = new GroupLog(Path.Combine(a.GroupDir(group), "output.log"));
        var printedBeforeStop = log.LastCount("c count") ?? 0;

        (await hactl.Run("stop", group)).Ok();
        var mark = log.Length;
        var restored = (await hactl.Run("restore", group)).Ok().Json;
        Assert.Equal(id, restored.GetProperty("id").GetString());
        var pids = restored.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("pid").GetInt32()).Order().ToList();
        Assert.Equal(new[] { counter.GetProperty("pid").GetInt32(), memory.GetProperty("pid").GetInt32() }.Order(), pids);

        await WaitUntil(() => log.Counts("c count", mark).Count >= 3, "3 counts after the restore");
        var after = log.Counts("c count", mark);
        output.WriteLine($"printed {printedBeforeStop} before the stop, then after the restore: {string.Join(' ', after)}");
        Assert.True(after[0] > 1 && after[0] <= printedBeforeStop + 1, $"the counter went on from {after[0]}, not from its checkpoint");
        Assert.True(after.Zip(after.Skip(1)).All(p => p.Second == p.First + 1), $"counts after the restore skip or repeat: {string.Join(' ', after)}");

        // Each member verifies its own state (SIGUSR1, sent inside the node: its pids are the node's).
        var verifyMark = log.Length;
        foreach (var hostPid in restored.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("hostPid").GetInt32()))
        {
            (await lab.Exec("node-a", "/bin/sh", "-c", $"kill -USR1 {hostPid}")).Ok();
        }

        foreach (var role in new[] { "counter-c", "memory" })
        {
            await WaitUntil(() => log.Verified(role, verifyMark).Count > 0, $"VERIFY OK {role}");
        }

        Assert.Null(log.FirstFail());
        (await hactl.Run("stop", group)).Ok();
    }

    [Fact, Trait("Category", "Integration")]
    public async Task Partition_CutsTheNodeOff_AndHealBringsItBack()
    {
        await using var lab = await LabSession.UpAsync(output);
        var b = lab.Node("node-b");
        await lab.ExecInBackground("node-b", "listening", Repo.Workload("lab_tcp"), "listen", Port.ToString(CultureInfo.InvariantCulture));
        await WaitConnects(lab, b);

        (await lab.Lab("partition", lab.Dir, "node-a")).Ok();
        var cut = await Connect(lab, b, seconds: 3);
        Assert.True(cut.ExitCode != 0, $"node-a reached node-b while partitioned:\n{cut}");
        var status = (await lab.Lab("status", lab.Dir, "--json")).Ok().Json.GetProperty("nodes");
        Assert.Equal(("up", "down", true), NodeStatus(status, "node-a")); // its processes live on
        // node-b still reaches itself: only node-a's link is down.
        (await lab.Exec("node-b", Repo.Workload("lab_tcp"), "connect", b.Address, Port.ToString(CultureInfo.InvariantCulture), "10")).Ok();

        (await lab.Lab("heal", lab.Dir, "node-a")).Ok();
        await WaitConnects(lab, b);
        status = (await lab.Lab("status", lab.Dir, "--json")).Ok().Json.GetProperty("nodes");
        Assert.Equal(("up", "up", true), NodeStatus(status, "node-a"));
    }

    [Fact, Trait("Category", "Integration")]
    public async Task BadInput_IsOneLine()
    {
        await using var lab = await LabSession.UpAsync(output, nodes: 1);
        (await lab.Lab("crash", lab.Dir, "node-z")).FailsWithOneLine();
        (await lab.Lab("partition", lab.Dir, "node-b")).FailsWithOneLine();
        var again = (await lab.Lab("up", lab.Dir)).FailsWithOneLine();
        Assert.Contains("already holds a lab", again.Stderr);
        (await lab.Lab("up", LabSession.NewDir(), "--nodes", "0")).FailsWithOneLine();
        (await lab.Lab("status", LabSession.NewDir())).FailsWithOneLine();
        (await lab.Lab("exec", lab.Dir, "node-a")).FailsWithOneLine();

        // Without CAP_NET_ADMIN (dropped from the bounding set), a lab command says what it lacks.
        var weak = (await Hactl.RunRaw("setpriv", ["--bounding-set=-net_admin", Repo.Hactl, "lab", "status", lab.Dir], Timeouts.Command)).FailsWithOneLine();
        Assert.Contains("CAP_NET_ADMIN", weak.Stderr);
    }

    private static (string State, string Link, bool Answers) NodeStatus(JsonElement nodes, string name)
    {
        var n = nodes.EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        return (n.GetProperty("state").GetString()!, n.GetProperty("link").GetString()!, n.GetProperty("agentAnswers").GetBoolean());
    }

    private static Task<HactlResult> Connect(LabSession lab, LabNode to, int seconds) =>
        lab.Exec("node-a", Repo.Workload("lab_tcp"), "connect", to.Address, Port.ToString(CultureInfo.InvariantCulture),
            seconds.ToString(CultureInfo.InvariantCulture));

    /// <summary>node-a connects to node-b, retrying while the link comes up.</summary>
    private static async Task WaitConnects(LabSession lab, LabNode to)
    {
        HactlResult? last = null;
        await WaitUntil(() =>
        {
            last = Connect(lab, to, seconds: 5).GetAwaiter().GetResult();
            return last.ExitCode == 0;
        }, $"node-a to connect to {to.Name} ({to.Address}:{Port})", () => last?.ToString() ?? "");
    }

    private static async Task WaitForCount(LabNode node, string group, string tag, int n)
    {
        var log = new GroupLog(Path.Combine(node.GroupDir(group), "output.log"));
        await WaitUntil(() => log.Counts(tag).Count >= n, $"{n} \"{tag}\" lines on {node.Name}", () => log.Tail(10));
    }

    private static async Task WaitUntil(Func<bool> ok, string what, Func<string>? detail = null)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (!ok())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}\n{detail?.Invoke()}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>
    /// Counts what is on the machine before a lab, brings one up, counts again, runs <paramref name="body"/>,
    /// takes the lab down (the session's dispose) and checks that nothing of it is left.
    /// </summary>
    private async Task LeavesNothingBehind(int nodes, Func<LabSession, LabFootprint, LabFootprint, Task> body, bool ignoreZombies = false)
    {
        var dir = LabSession.NewDir();
        var before = await LabFootprint.TakeAsync(dir);
        LabFootprint? during = null;
        try
        {
            await using (var lab = await LabSession.UpAsync(output, nodes, dir))
            {
                Assert.Equal(nodes, lab.Nodes.Count);
                during = await LabFootprint.TakeAsync(dir, pin: true);
                await body(lab, before, during);
            }

            await AssertNothingLeft(dir, before, during, ignoreZombies);
        }
        finally
        {
            during?.Dispose();
        }
    }

    private async Task AssertNothingLeft(string dir, LabFootprint before, LabFootprint during, bool ignoreZombies = false)
    {
        var after = await LabFootprint.TakeAsync(dir);
        Assert.True(after.Processes.Count == 0, $"processes of the lab left:\n{string.Join('\n', after.Processes)}");
        var inUse = LabFootprint.StillInUse(during.Namespaces, ignoreZombies);
        Assert.True(inUse.Count == 0, $"namespaces of the lab still in use: {string.Join(' ', inUse)}");
        var nsfs = File.ReadAllLines("/proc/self/mountinfo").Where(l => during.Namespaces.Any(ns => l.Contains(ns, StringComparison.Ordinal))).ToList();
        Assert.True(nsfs.Count == 0, $"mounts of the lab's namespaces left: {string.Join('\n', nsfs)}");
        Assert.Equal(before.HostLinks, after.HostLinks);
        Assert.Equal(before.HostMounts, after.HostMounts);
        output.WriteLine($"nothing left: {during.Processes.Count} processes and {during.Namespaces.Count} namespaces gone");
    }
}
