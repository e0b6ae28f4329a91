using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

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
        Assert.All(lab.Nodes, n => Assert.Equal(n.Address + ":7400", n.PeerAddress));

        // One cluster: its credentials in DIR/cluster (0700, keys 0600), and each agent serves its peers on
        // its address and knows every other node.
        Assert.Equal(Path.Combine(lab.Dir, "cluster"), lab.ClusterDir);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(lab.ClusterDir));
        foreach (var key in new[] { "ca.key" }.Concat(lab.Nodes.Select(n => n.Name + ".key")))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(lab.ClusterDir, key)));
        }

        foreach (var node in lab.Nodes)
        {
            Assert.True(File.Exists(Path.Combine(lab.ClusterDir, node.Name + ".crt")), $"{node.Name}.crt in {lab.ClusterDir}");
            var args = string.Join(' ', lab.AgentCommandLine(node.Name));
            Assert.Contains($"--node {node.Name} --cluster {lab.ClusterDir} --peer-listen {node.PeerAddress}", args);
            Assert.Contains($"--peer-timeout {LabSession.PeerTimeout} --migration-resolve-timeout {LabSession.MigrationResolveTimeout}", args);
            foreach (var other in lab.Nodes.Where(o => o != node))
            {
                Assert.Contains($"--peer {other.Name}={other.PeerAddress}", args);
            }
        }

        var status = (await lab.Lab("status", lab.Dir, "--json")).Ok().Json;
        Assert.Equal(lab.ClusterDir, status.GetProperty("clusterDir").GetString());
        Assert.Equal(lab.Nodes.Select(n => n.PeerAddress), status.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("peerAddress").GetString()));
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
        await LabSession.WaitForCount(a, "crashed", "c count", 2);
        using var nodeA = await LabFootprint.TakeAsync(Path.Combine(lab.Dir, "nodes", "node-a"), pin: true);
        var agentBefore = lab.AgentCommandLine("node-a");

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
        Assert.Equal(agentBefore, lab.AgentCommandLine("node-a")); // the same options: a member of the cluster again
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
        await LabLeftovers.AssertNothingLeft(output, lab.Dir, before, during, ignoreZombies: true);
        Assert.False(File.Exists(Path.Combine(lab.Dir, "lab.json")));

        // The same directory takes a new lab, whose agents find their state directories and the cluster's
        // credentials: the nodes it had keep theirs, a new node gets its own, signed by the same CA.
        var credentials = File.ReadAllText(Path.Combine(lab.ClusterDir, "node-b.crt"));
        await using var again = await LabSession.UpAsync(output, nodes: 3, dir: lab.Dir);
        (await again.On(again.Node("node-b")).Run("status")).Ok();
        Assert.Equal(credentials, File.ReadAllText(Path.Combine(again.ClusterDir, "node-b.crt")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(again.ClusterDir, "node-c.key")));
        (await again.On(again.Node("node-c")).Run("status")).Ok(); // its agent loaded its credentials
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
        await LabSession.WaitForCount(a, group, "c count", 3);

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

        await LabSession.WaitUntil(() => log.Counts("c count", mark).Count >= 3, "3 counts after the restore");
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
            await LabSession.WaitUntil(() => log.Verified(role, verifyMark).Count > 0, $"VERIFY OK {role}");
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
        var shortTimeout = (await lab.Lab("up", LabSession.NewDir(), "--peer-timeout", "1s")).FailsWithOneLine();
        Assert.Contains("--peer-timeout '1s' is not a duration from 2s to 10m", shortTimeout.Stderr);
        (await lab.Lab("up", LabSession.NewDir(), "--migration-resolve-timeout", "ten")).FailsWithOneLine();
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
        await LabSession.WaitUntil(() =>
        {
            last = Connect(lab, to, seconds: 5).GetAwaiter().GetResult();
            return last.ExitCode == 0;
        }, $"node-a to connect to {to.Name} ({to.Address}:{Port})", () => last?.ToString() ?? "");
    }

    private Task LeavesNothingBehind(int nodes, Func<LabSession, LabFootprint, LabFootprint, Task> body, bool ignoreZombies = false) =>
        LabLeftovers.LeavesNothingBehind(output, nodes, body, ignoreZombies);
}
