using System.Globalization;
using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// The source's agent restarts (`hactl lab restart-agent`: killed, a new one started) while a
/// migration whose takeover outcome it could not learn is unsettled, the target cut off
/// (docs/architecture.md, "Moving a live group"). The group's processes on the source were told to
/// HOLD before the takeover: their links end with the agent, and they stay frozen (without it the
/// interceptor thaws them, and the copy runs on the source even if the target runs it). The new
/// agent finds the migration on disk and settles it once the target answers: (a) the target runs
/// the group, so the copy on the source ends; (b) it does not (its takeover undone, then fenced), so
/// the copy on the source runs on, its counters with no gap and no repeat. Each copy prints its
/// counters into its node's output.log, read in the order the group ran on the nodes: a second
/// writer would break the order (<see cref="LabMigration.AssertUnbroken"/>).
/// </summary>
public sealed class LabMigrationAgentRestartTests(SharedLabWithMigrationHolds shared, ITestOutputHelper output) : HeldMigrationTests(shared, output)
{
    /// <summary>
    /// (a) The target runs the group, its answer lost in the cut link; the source's agent restarts
    /// meanwhile. The copy on the source stays frozen through the restart (its output does not grow while
    /// the target's counts on); once healed, the new agent learns that the target runs the group and ends it.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetRunsTheGroup_SourceAgentRestarts_FrozenCopyEndsOnceHealed() =>
        await RanThereAndRestarted(await Groups.Launch("restart-ran"), supervised: false);

    /// <summary>
    /// (a) with a supervised group: after the restart its supervisor stays migrating, and once the
    /// migration is settled the policy here is the standby's copy, as after any move.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetRunsTheGroup_SourceAgentRestarts_SupervisedGroupIsHandedOverOnceHealed() =>
        await RanThereAndRestarted(await Groups.StartSupervised("restart-handed"), supervised: true);

    /// <summary>
    /// (a) with a supervised group that the operator stopped here while its migration was unsettled,
    /// before the agent restarted: the new agent starts nothing here (status: migrating, and why), and
    /// once healed, learns that the target runs the group and keeps the policy as the standby's copy,
    /// as after any move.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetRunsTheGroup_OperatorStopsTheFrozenCopy_AgentRestarts_PolicyBecomesTheStandbysCopyOnceHealed()
    {
        var group = await Groups.StartSupervised("restart-stopped");
        try
        {
            var gate = Groups.Gate(B, group.Name, "takeover-reply");
            var migrate = await StartHeldAndCut(group, gate);
            File.Delete(gate);
            Assert.Contains("outcome unknown", (await migrate).FailsWithOneLine().Stderr);
            (await Lab.On(Lab.Node(A)).Run("group", "stop", group.Name)).Ok();
            await RestartAgent(A);
            var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
            Assert.Equal("migrating", availability?.Str("state"));
            Assert.Contains($"stopped here while moving to node {B}", availability?.Str("reason"));
            Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", 0);
        Assert.Contains("the operator had stopped it here meanwhile; this node is its standby now", settled.Message);
        var standby = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
        Assert.Equal("standby", standby?.Str("state"));
        Assert.Contains($"runs on node {B}", standby?.Str("reason"));
        Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} once settled");
        (await Lab.On(Lab.Node(B)).Run("group", "stop", group.Name)).Ok();
    }

    /// <summary>
    /// (b) with a supervised group that the operator stopped here while its migration was unsettled,
    /// before the agent restarted: once healed, the target says it does not run the group (it gave its
    /// takeover up), and the group stays as the operator left it: stopped, its policy in force here.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetGaveUp_OperatorStopsTheFrozenCopy_AgentRestarts_GroupStaysStoppedHere()
    {
        var group = await Groups.StartSupervised("restart-stopped-here");
        var gate = Groups.Gate(B, group.Name, "takeover-resume");
        try
        {
            Assert.Contains("outcome unknown", (await CutUntilTheTargetGaveUp(group, gate)).FailsWithOneLine().Stderr);
            (await Lab.On(Lab.Node(A)).Run("group", "stop", group.Name)).Ok();
            await RestartAgent(A);
            Assert.Equal("migrating", (await LabEvents.Show(Lab, A, group.Name)).Prop("availability")?.Str("state"));
        }
        finally
        {
            File.Delete(gate);
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", 0);
        Assert.Contains("the operator had settled it here meanwhile; nothing done", settled.Message);
        var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
        Assert.Equal("stopped", availability?.Str("state"));
        Assert.Contains($"while its migration to node {B} was not settled; that node does not run it", availability?.Str("reason"));
        Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        (await Lab.On(Lab.Node(A)).Run("group", "delete", group.Name)).Ok();
    }

    private async Task RanThereAndRestarted(LabGroup group, bool supervised)
    {
        var before = await LabMigration.Members(Lab, A, group.Name);
        var sourceLog = Lab.Node(A).Log(group.Name).Path;
        try
        {
            var gate = Groups.Gate(B, group.Name, "takeover-reply");
            var migrate = await StartHeldAndCut(group, gate);
            File.Delete(gate);
            Assert.Contains("outcome unknown", (await migrate).FailsWithOneLine().Stderr);
            Assert.Equal(group.Pids, (await LabMigration.Members(Lab, B, group.Name)).Select(m => m.Pid));

            var mark = await LabEvents.LastSeq(Lab, A, group.Name);
            var frozenAt = new FileInfo(sourceLog).Length;
            await RestartAgent(A);
            await WaitForRegistrations(group);
            // The copy on node-b counts on; node-a's prints nothing (a thawed copy would: a second writer).
            await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} after {A}'s agent restarted");
            Assert.True(frozenAt == new FileInfo(sourceLog).Length, $"the copy on {A} ran on after its agent restarted, beside the one on {B}: {SourceTail(group)}");
            await AssertHeldFrozen(group, mark);
            if (supervised)
            {
                Assert.Equal("migrating", (await LabEvents.Show(Lab, A, group.Name)).Prop("availability")?.Str("state"));
            }
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", 0);
        Assert.Contains("runs there", settled.Message);
        Assert.Contains("its frozen copy here ended", settled.Message);
        Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        await LabMigration.AssertGoneFrom(Lab, A, group, before);
        Assert.False(File.Exists(Path.Combine(Lab.Node(A).StateDir, "migrations", group.Name)), "the settled migration's record is left");
        if (supervised)
        {
            var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
            Assert.Equal("standby", availability?.Str("state"));
            Assert.Contains($"runs on node {B}", availability?.Str("reason"));
        }
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} once settled");
        await LabMigration.Verify(Lab, B, group);
        LabMigration.AssertUnbroken(group);
        string[] stop = supervised ? ["group", "stop", group.Name] : ["stop", group.Name];
        (await Lab.On(Lab.Node(B)).Run(stop)).Ok();
    }

    /// <summary>
    /// (b) The target restored the group but gave it up (held before its resume, the link cut until its
    /// end of the takeover found the caller gone); the source's agent restarts meanwhile. The copy on the
    /// source stays frozen through the restart; once healed, the new agent abandons the migration on the
    /// target (fenced there), learns that the group does not run there, and resumes its copy, which
    /// counts on from where it froze.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetGaveUp_SourceAgentRestarts_GroupResumesOnceHealed() =>
        await GaveUpAndRestarted(await Groups.Launch("restart-resume"), supervised: false);

    /// <summary>
    /// (b) with a supervised group: after the restart its supervisor stays migrating (no health check,
    /// schedule or recovery on the frozen processes) until the migration is settled, then watches the
    /// group again, which runs on.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetGaveUp_SourceAgentRestarts_SupervisedGroupResumesOnceHealed() =>
        await GaveUpAndRestarted(await Groups.StartSupervised("restart-supervised"), supervised: true);

    private async Task GaveUpAndRestarted(LabGroup group, bool supervised)
    {
        var sourceLog = Lab.Node(A).Log(group.Name).Path;
        var gate = Groups.Gate(B, group.Name, "takeover-resume");
        try
        {
            Assert.Contains("outcome unknown", (await CutUntilTheTargetGaveUp(group, gate)).FailsWithOneLine().Stderr);

            var mark = await LabEvents.LastSeq(Lab, A, group.Name);
            var frozenAt = new FileInfo(sourceLog).Length;
            await RestartAgent(A);
            await WaitForRegistrations(group);
            // Long enough for a thawed copy to print several counts (they print every 100 ms).
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.True(frozenAt == new FileInfo(sourceLog).Length, $"the copy on {A} ran on after its agent restarted, its migration unsettled: {SourceTail(group)}");
            await AssertHeldFrozen(group, mark);
            if (supervised)
            {
                var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
                Assert.Equal("migrating", availability?.Str("state"));
                Assert.Contains($"the agent restarted before node {B} said whether it runs the group", availability?.Str("reason"));
            }
        }
        finally
        {
            File.Delete(gate);
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", 0);
        Assert.Contains("does not run there", settled.Message);
        Assert.Contains("it runs on here", settled.Message);
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} once settled");
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        Assert.All(await MemberStates(A, group.Name), state => Assert.Equal("running", state));
        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        Assert.False(File.Exists(Path.Combine(Lab.Node(A).StateDir, "migrations", group.Name)), "the settled migration's record is left");
        if (supervised)
        {
            await LabEvents.WaitFor(Lab, A, group.Name, "supervision.resumed", 0);
            Assert.Equal("running", (await LabEvents.Show(Lab, A, group.Name)).Prop("availability")?.Str("state"));
        }
        await LabMigration.Verify(Lab, A, group);
        LabMigration.AssertUnbroken(group);
        string[] stop = supervised ? ["group", "stop", group.Name] : ["stop", group.Name];
        (await Lab.On(Lab.Node(A)).Run(stop)).Ok();
    }

    /// <summary>
    /// (b) with a process that registers again only after the migration was settled: it is stopped
    /// (SIGSTOP) across the agent restart, so it cannot relink. The new agent waits for it a while,
    /// then resumes the rest of the group; once continued, the process relinks held frozen and is
    /// resumed too: the whole group runs on, counters with no gap and no repeat.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TargetGaveUp_SourceAgentRestarts_AProcessThatRegistersOnlyAfterTheSettle_IsResumedToo()
    {
        var group = await Groups.Launch("restart-late");
        var late = (await Lab.On(Lab.Node(A)).Run("status", group.Name)).Ok().Json.Array("groups")
            .SelectMany(g => g.Array("members")).Select(Member.From).Single(m => m.App == "memory");
        var gate = Groups.Gate(B, group.Name, "takeover-resume");
        try
        {
            Assert.Contains("outcome unknown", (await CutUntilTheTargetGaveUp(group, gate)).FailsWithOneLine().Stderr);
            (await Lab.Lab("exec", Lab.Dir, A, "--", "kill", "-STOP", late.HostPid.ToString(CultureInfo.InvariantCulture))).Ok();
            await RestartAgent(A);
        }
        finally
        {
            File.Delete(gate);
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", 0);
        Assert.Contains("it runs on here", settled.Message);
        Assert.Equal(["running"], await MemberStates(A, group.Name));

        (await Lab.Lab("exec", Lab.Dir, A, "--", "kill", "-CONT", late.HostPid.ToString(CultureInfo.InvariantCulture))).Ok();
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (await MemberStates(A, group.Name) is var states && !(states.Count == group.Pids.Count && states.All(s => s == "running")))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the late process of {group.Name} was not resumed on {A}: {string.Join(' ', states)}");
            await Task.Delay(200);
        }
        Assert.Contains("1 of its processes have not registered again since the agent restart", Groups.AgentLog(A));
        Assert.Contains("registered again held frozen after the group's migration was settled here: resumed", Groups.AgentLog(A));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} once the late process was resumed");
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        await LabMigration.Verify(Lab, A, group);
        LabMigration.AssertUnbroken(group);
        (await Lab.On(Lab.Node(A)).Run("stop", group.Name)).Ok();
    }

    private async Task RestartAgent(string node)
    {
        var restarted = (await Lab.Lab("restart-agent", Lab.Dir, node)).Ok();
        Assert.Contains("its agent was killed and a new one answers", restarted.Stdout);
    }

    /// <summary>
    /// The new agent on node-a took the migration up (`migration.unsettled`), and the group's processes
    /// registered again held: frozen, and the group cannot be checkpointed (its RESUME would thaw it).
    /// </summary>
    private async Task AssertHeldFrozen(LabGroup group, long mark)
    {
        var unsettled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.unsettled", mark);
        Assert.Contains($"not settled: the group's {group.Pids.Count} processes stay frozen here until node {B} answers", unsettled.Message);
        Assert.All(await MemberStates(A, group.Name), state => Assert.Equal("frozen", state));
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        Assert.Contains("held frozen here", (await Lab.On(Lab.Node(A)).Run("checkpoint", group.Name)).FailsWithOneLine().Stderr);
        var again = (await Lab.On(Lab.Node(A)).Run("migrate", group.Name, "--to", B)).FailsWithOneLine();
        Assert.Contains("is not settled yet", again.Stderr);
    }

    /// <summary>Until the group's processes on node-a registered again with its new agent.</summary>
    private async Task WaitForRegistrations(LabGroup group)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while ((await MemberStates(A, group.Name)).Count != group.Pids.Count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the processes of {group.Name} did not register again on {A}");
            await Task.Delay(200);
        }
    }

    private string SourceTail(LabGroup group) => string.Join(" | ", Lab.Node(A).Log(group.Name).Lines().TakeLast(5));

    private async Task<IReadOnlyList<string>> MemberStates(string node, string group)
    {
        var status = await Lab.On(Lab.Node(node)).Run("status", group);
        return status.ExitCode != 0
            ? []
            : status.Json.Array("groups").SelectMany(g => g.Array("members")).Select(m => m.Str("state") ?? "").ToList();
    }
}
