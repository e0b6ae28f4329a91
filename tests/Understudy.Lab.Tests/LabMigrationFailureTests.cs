using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// Issue 11, item 6: a migration whose target fails in the middle, on a real lab. The fault lands
/// while the first pre-copy round is on its way (node-b's staging directory holds part of it, and
/// the migration has not ended): `hactl lab crash` (the node's every process dies, its link goes
/// down) or `hactl lab partition` (the link goes down, the node lives on). The group never stops
/// running on node-a, `migrate` fails with one line that says so, and once node-b is back (started
/// again, or healed) the group moves there.
/// </summary>
public sealed class LabMigrationFailureTests(ITestOutputHelper output)
{
    private const string A = "node-a", B = "node-b";

    /// <summary>
    /// node-b crashes. The later migration goes to node-b itself once `lab start` brought it back
    /// (rather than to a third node): the target that failed is the one that must take the group
    /// afterwards, with the partial first round its agent discarded at its start.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task TargetCrashesMidMigration_GroupRunsOnAtTheSource_MovesOnceTheNodeIsBack() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await Launch(lab, "crashed-target");
        await FailMidMigration(lab, group, () => lab.Lab("crash", lab.Dir, B));
        (await lab.Lab("start", lab.Dir, B)).Ok();
        await MovesNow(lab, group);
    });

    /// <summary>
    /// node-b is cut off during the pre-copy rounds; its agent lives on with the partial round. Once
    /// healed, the group moves there. (A partition exactly as node-b starts the group is another
    /// matter: node-a keeps the group frozen while it cannot learn the outcome; docs/architecture.md.)
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public Task TargetPartitionedInThePreCopy_GroupRunsOnAtTheSource_MovesOnceHealed() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        var group = await Launch(lab, "partitioned-target");
        await FailMidMigration(lab, group, () => lab.Lab("partition", lab.Dir, B));
        Assert.Empty(await LabMigration.Members(lab, B, group.Name));
        (await lab.Lab("heal", lab.Dir, B)).Ok();
        await MovesNow(lab, group);
    });

    /// <summary>A 256 MiB memory workload and a counter on node-a: the first round takes long enough to be cut.</summary>
    private static async Task<LabGroup> Launch(LabSession lab, string name)
    {
        var onA = lab.On(lab.Node(A));
        (await onA.Run("launch", name, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok();
        (await onA.Run("launch", name, "--app", "memory", "--", Repo.Workload("wl_memory"), "256")).Ok();
        var log = lab.Node(A).Log(name);
        string[] tags = ["c count", "count"], roles = ["counter-c", "memory"];
        await LabMigration.WaitForCounts(new LabGroup(name, log, tags, roles, []), 3, 0, $"on {A}");
        var members = await LabMigration.WaitForMembers(lab, A, name, 2);
        return new LabGroup(name, log, tags, roles, members.Select(m => m.Pid).ToList());
    }

    /// <summary>
    /// Starts migrating the group to node-b and, once node-b's staging directory holds part of the first
    /// round, injects <paramref name="fault"/>; then checks that migrate failed with one line and that the
    /// group runs on at node-a, unbroken and verified.
    /// </summary>
    private async Task FailMidMigration(LabSession lab, LabGroup group, Func<Task<HactlResult>> fault)
    {
        var migrate = await LabMigration.StartUntilTheFirstRoundArrives(lab, group.Name, A, B);
        (await fault()).Ok();

        var failed = (await migrate).FailsWithOneLine();
        output.WriteLine($"migrate: {failed.Stderr.Trim()}");
        Assert.Contains($"to node {B} failed", failed.Stderr);
        Assert.Matches("the group ran on here throughout|the group runs on here", failed.Stderr);
        Assert.DoesNotContain("operation was canceled", failed.Stderr, StringComparison.OrdinalIgnoreCase);

        var members = await LabMigration.Members(lab, A, group.Name);
        Assert.Equal(group.Pids, members.Select(m => m.Pid));
        var mark = group.Log.Length;
        await LabMigration.WaitForCounts(group, 3, mark, $"on {A} after the failed migration");
        await LabMigration.Verify(lab, A, group);
        LabMigration.AssertUnbroken(group);
        var events = (await lab.On(lab.Node(A)).Run(["events", group.Name], json: false)).Ok().Stdout;
        Assert.Contains("migration.failed", events);
    }

    /// <summary>The group moves to node-b now: same pids, nothing left on node-a, verified there, unbroken.</summary>
    private static async Task MovesNow(LabSession lab, LabGroup group)
    {
        await LabMigration.Move(lab, group, A, B);
        await LabMigration.Verify(lab, B, group);
        LabMigration.AssertUnbroken(group);
        (await lab.On(lab.Node(B)).Run("stop", group.Name)).Ok();
    }
}
