using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// Issue 11, item 5: `hactl migrate` between the nodes of a real lab (network, mount and pid
/// namespaces; the lab's bridge), under load. A 1 GiB memory workload with a counter, and a fork
/// tree with data in flight in its pipes (a parent and its forked child exchanging records over two
/// pipes; a bash script that ran a pipeline and exec'd into a program that forked a child that
/// exec'd), each move node-a → node-b → node-a while the other runs. Each time: same pids, the
/// target's standby is the source and in sync, nothing of the group left on the source, counters
/// unbroken; each process verifies itself (memory, pipes, parents) where it runs.
/// </summary>
public sealed class LabMigrationTests(ITestOutputHelper output)
{
    private const string A = "node-a", B = "node-b";
    private const int Retention = 3; // the agent's default --retention, which `lab up` leaves as it is

    [Fact, Trait("Category", "Integration")]
    public Task UnderLoad_1GiBCounterAndForkTreeWithPipes_MoveThereAndBack_Lossless_SamePids() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var big = await LaunchBig(lab, "big");
        var tree = await LaunchTree(lab, "tree");
        var moves = new List<(string Group, LabMove Move, long DiskUse)>();

        foreach (var (from, to) in new[] { (A, B), (B, A) })
        {
            // The small group moves while the 1 GiB one runs, then the 1 GiB one while the other runs there.
            foreach (var group in new[] { tree, big })
            {
                var move = await LabMigration.Move(lab, group, from, to);
                moves.Add((group.Name, move, LabMigration.DiskUse(lab)));
            }
            foreach (var group in new[] { tree, big })
            {
                await LabMigration.Verify(lab, to, group);
            }
        }

        foreach (var (group, move, disk) in moves)
        {
            output.WriteLine($"{group} {move.From} -> {move.To}: {move.Rounds} rounds, {move.Bytes >> 20} MiB sent, frozen {move.FrozenMs:F0} ms, " +
                             $"whole {move.DurationMs:F0} ms; the lab's files then: {LabMigration.GiB(disk)}");
        }
        // A group without a policy keeps the agent's --retention newest checkpoints (3 on a lab's nodes),
        // and so does the node that receives them; a move's rounds are kept only while it runs. Each is a
        // whole image once merged: on each node, the 1 GiB group's kept ones, plus one being merged.
        var peak = moves.Max(m => m.DiskUse);
        Assert.True(peak <= 2 * (Retention + 2) * (1100L << 20), $"the lab's files grew to {LabMigration.GiB(peak)}");

        var mark = big.Log.Length;
        await LabMigration.WaitForCounts(big, 3, mark, "at the end");
        foreach (var group in new[] { big, tree })
        {
            LabMigration.AssertUnbroken(group);
            (await lab.On(lab.Node(A)).Run("stop", group.Name)).Ok();
        }
    });

    /// <summary>The 1 GiB memory workload (each page checked and rewritten at random, 6400 a second) and a counter.</summary>
    private static async Task<LabGroup> LaunchBig(LabSession lab, string name)
    {
        var onA = lab.On(lab.Node(A));
        (await onA.Run("launch", name, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok();
        (await onA.Run("launch", name, "--app", "memory", "--", Repo.Workload("wl_memory"), "1024")).Ok();
        return await Running(lab, name, ["c count", "count"], ["counter-c", "memory"], members: 2);
    }

    /// <summary>
    /// A fork tree with data in flight: wl_pipes (a parent and its forked child, records always in
    /// both pipes) and wl_script.sh (bash, a pipeline, exec into wl_exec_parent, which forks a child
    /// that execs wl_exec_child).
    /// </summary>
    private static async Task<LabGroup> LaunchTree(LabSession lab, string name)
    {
        var onA = lab.On(lab.Node(A));
        (await onA.Run("launch", name, "--app", "pipes", "--", Repo.Workload("wl_pipes"))).Ok();
        (await onA.Run("launch", name, "--app", "script", "--", Repo.Workload("wl_script.sh"))).Ok();
        return await Running(lab, name, ["count", "parent count", "child count"], ["pipes-parent", "pipes-child", "exec-parent", "exec-child"], members: 4);
    }

    private static async Task<LabGroup> Running(LabSession lab, string name, string[] tags, string[] roles, int members)
    {
        var log = lab.Node(A).Log(name);
        await LabMigration.WaitForCounts(new LabGroup(name, log, tags, roles, []), 3, 0, $"on {A}");
        var running = await LabMigration.WaitForMembers(lab, A, name, members);
        return new LabGroup(name, log, tags, roles, running.Select(m => m.Pid).ToList());
    }
}
