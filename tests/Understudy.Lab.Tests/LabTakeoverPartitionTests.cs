using System.Text.Json;
using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// The link between source and target is cut (`hactl lab partition`) at each moment of a
/// migration's takeover, on a real lab, each moment reached exactly by holding the migration there
/// (docs/architecture.md, "Moving a live group"): (a) the group frozen for the last round, before
/// that round is sent; (b) the takeover sent, the group restored on the target but not yet resumed;
/// (c) the group resumed on the target, its answer not yet sent. In every case the group never runs
/// on both nodes: each copy prints its counters into its node's output.log, read in the order the
/// group ran on the nodes, so a copy running on the source beside the target's would break the order
/// (<see cref="LabMigration.AssertUnbroken"/>). An
/// outcome the source cannot learn while the link is down leaves the group frozen there, and is
/// settled by the source on its own once the link is back. One lab for the class.
/// </summary>
public sealed class LabTakeoverPartitionTests(SharedLabWithMigrationHolds shared, ITestOutputHelper output) : HeldMigrationTests(shared, output)
{
    /// <summary>
    /// (a) Cut as the last round is sent: the target never got the whole round, let alone a takeover.
    /// The send fails, the source resumes the group, which runs there only; `migrate` says so in one
    /// line. Once healed, the group moves.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutWhileTheLastRoundIsSent_GroupRunsOnAtTheSource()
    {
        var group = await Groups.Launch("cut-send");
        try
        {
            var failed = (await MigrateCutAt(group, A, "final-send", release: true)).FailsWithOneLine();
            Assert.Contains($"to node {B} failed: sending checkpoint", failed.Stderr);
            Assert.Contains("the group runs on here", failed.Stderr);

            Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
            Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
            await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} after the failed migration");
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }
        await LabMigration.Move(Lab, group, A, B);
        await LabMigration.Verify(Lab, B, group);
        LabMigration.AssertUnbroken(group);
        (await Lab.On(Lab.Node(B)).Run("stop", group.Name)).Ok();
    }

    /// <summary>
    /// (b) Cut after the takeover was sent, the group restored on the target and still frozen there,
    /// and the link stays down until the target's end of the call finds it dead: the target kills
    /// what it restored. The source cannot learn that meanwhile: `migrate` fails with one line, the
    /// group frozen and still migrating under its supervisor there. Once healed, the source asks again,
    /// learns that the group does not run on the target, and resumes it: it runs on, supervised, there.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutBeforeTheTargetResumes_TargetGivesUp_SourceResumesOnceHealed()
    {
        var group = await Groups.StartSupervised("cut-resume");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var gate = Groups.Gate(B, group.Name, "takeover-resume");
        try
        {
            await AssertUnknownOutcome(group, await CutUntilTheTargetGaveUp(group, gate));
        }
        finally
        {
            File.Delete(gate);
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        await AssertResumedAtTheSource(group, mark);
        Assert.Equal("running", (await LabEvents.Show(Lab, A, group.Name)).Prop("availability")?.Str("state"));
        (await Lab.On(Lab.Node(A)).Run("group", "stop", group.Name)).Ok();
    }

    /// <summary>
    /// (c) Cut once the group runs on the target, before its answer: the target runs it, the source
    /// cannot learn that while the link is down and keeps its copy frozen (`migrate` fails with one
    /// line; status there: migrating). Once healed, the source learns that the group runs on the
    /// target and ends its copy; its policy becomes the standby's copy, as after any move.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutBeforeTheAnswer_GroupRunsOnTheTarget_SourceEndsItsFrozenCopyOnceHealed()
    {
        var group = await Groups.StartSupervised("cut-answer");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var before = await LabMigration.Members(Lab, A, group.Name);
        try
        {
            var failed = await MigrateCutAt(group, B, "takeover-reply", release: true);
            Assert.Equal(group.Pids, (await LabMigration.Members(Lab, B, group.Name)).Select(m => m.Pid));
            await AssertUnknownOutcome(group, failed);
            // The copy on node-b runs and counts on; node-a's is frozen (a running one would repeat the counts).
            await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} while cut off");
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        await AssertEndedAtTheSource(group, mark, before);
        var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
        Assert.Equal("standby", availability?.Str("state"));
        Assert.Contains($"runs on node {B}", availability?.Str("reason"));
        Assert.Equal("running", (await LabEvents.Show(Lab, B, group.Name)).Prop("availability")?.Str("state"));
        (await Lab.On(Lab.Node(B)).Run("group", "stop", group.Name)).Ok();
    }

    /// <summary>
    /// (c) again, but the operator settles it first, by stopping the frozen copy on node-a while
    /// node-b is cut off (the safe choice: whichever node runs the group, it is not node-a). Once
    /// healed, node-a learns that the group runs on node-b and becomes its standby: the policy there
    /// is the standby's copy, which starts nothing (`group start` is refused, naming node-b).
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutBeforeTheAnswer_OperatorStopsTheFrozenCopy_SourceBecomesTheStandbyOnceHealed()
    {
        var group = await Groups.StartSupervised("cut-stopped");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        try
        {
            var failed = await MigrateCutAt(group, B, "takeover-reply", release: true);
            await AssertUnknownOutcome(group, failed);
            (await Lab.On(Lab.Node(A)).Run("stop", group.Name)).Ok();
            Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", mark);
        Assert.Contains("the operator had stopped it here meanwhile; this node is its standby now", settled.Message);
        Assert.Equal("standby", (await LabEvents.Show(Lab, A, group.Name)).Prop("availability")?.Str("state"));
        Assert.Contains($"runs on node {B}", (await Lab.On(Lab.Node(A)).Run("group", "start", group.Name)).FailsWithOneLine().Stderr);
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, B, group.Name)).Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} once settled");
        await LabMigration.Verify(Lab, B, group);
        LabMigration.AssertUnbroken(group);
        (await Lab.On(Lab.Node(B)).Run("group", "stop", group.Name)).Ok();
    }

    /// <summary>
    /// (b) again, and a frozen process's link to its agent breaks while the migration is unsettled, the
    /// agent running on: the process stays frozen (it was told to HOLD) and registers again, a new
    /// member. Once healed, the source learns that the group does not run on the target and resumes
    /// the whole group, the relinked process with it: it is no sign that the operator settled the group.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutBeforeTheTargetResumes_AFrozenProcessRelinks_SourceResumesTheWholeGroupOnceHealed()
    {
        var group = await Groups.Launch("cut-relink-resume");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var gate = Groups.Gate(B, group.Name, "takeover-resume");
        try
        {
            Assert.Contains("outcome unknown", (await CutUntilTheTargetGaveUp(group, gate)).FailsWithOneLine().Stderr);
            await BreakALinkWhileFrozen(group);
        }
        finally
        {
            File.Delete(gate);
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        await AssertResumedAtTheSource(group, mark);
        (await Lab.On(Lab.Node(A)).Run("stop", group.Name)).Ok();
    }

    /// <summary>
    /// (c) again, and a frozen process on the source relinks while the migration is unsettled: once
    /// healed, the source learns that the group runs on the target and ends its whole frozen copy, the
    /// relinked process with it; a relink is not the operator restoring the group there.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task CutBeforeTheAnswer_AFrozenProcessRelinks_SourceEndsItsWholeFrozenCopyOnceHealed()
    {
        var group = await Groups.Launch("cut-relink-end");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var before = await LabMigration.Members(Lab, A, group.Name);
        try
        {
            var failed = await MigrateCutAt(group, B, "takeover-reply", release: true);
            Assert.Contains("outcome unknown", failed.FailsWithOneLine().Stderr);
            await BreakALinkWhileFrozen(group);
        }
        finally
        {
            (await Lab.Lab("heal", Lab.Dir, B)).Ok();
        }

        await AssertEndedAtTheSource(group, mark, before);
        (await Lab.On(Lab.Node(B)).Run("stop", group.Name)).Ok();
    }

    /// <summary>
    /// The memory process of the group frozen on node-a loses its link (shut down from outside): it
    /// registers again held, as a new member, and stays frozen, the group still held for its migration.
    /// </summary>
    private async Task BreakALinkWhileFrozen(LabGroup group)
    {
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var memory = (await Status(A, group)).Array("members").Select(Member.From).Single(m => m.App == "memory");
        MemberLinks.Break(Lab.HostPidOf(A, memory.HostPid));
        var joined = await LabEvents.WaitFor(Lab, A, group.Name, "member.joined", mark);
        Assert.Contains($"member {memory.Pid} (memory) registered again on a new link", joined.Message);
        await AssertHeldFrozen(group);
    }

    /// <summary>
    /// (b) with a late takeover: the source's TakeOver reaches node-b only after the source gave the
    /// migration up and resumed the group (held on node-b past the call's end, `takeover-late`, as a
    /// request a healed link delivers late). Once healed, the source abandons the migration on node-b
    /// (which fences it for good) and only then resumes the group; the late takeover is then refused
    /// there: the group never runs on both nodes.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TakeOverArrivingAfterTheSourceResumed_IsRefused()
    {
        var group = await Groups.Launch("late-takeover");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var gate = Groups.Gate(B, group.Name, "takeover-late");
        try
        {
            try
            {
                var failed = (await (await StartHeldAndCut(group, gate))).FailsWithOneLine();
                Assert.Contains("outcome unknown", failed.Stderr);
                Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
                await AssertHeldFrozen(group);
            }
            finally
            {
                (await Lab.Lab("heal", Lab.Dir, B)).Ok();
            }
            var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", mark);
            Assert.Contains("does not run there", settled.Message);
            Assert.Equal("running", (await Status(A, group)).Str("state"));
            await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} once settled");
        }
        finally
        {
            // The takeover goes on now, its source long gone.
            File.Delete(gate);
        }

        await LabSession.WaitUntil(
            () => Groups.AgentLog(B).Contains($"Takeover of group {group.Name} from checkpoint", StringComparison.Ordinal) &&
                  Groups.AgentLog(B).Contains("gave that migration up already", StringComparison.Ordinal),
            $"{B} refusing the late takeover of {group.Name}", () => HeldMigrationGroups.Tail(Groups.AgentLog(B)));
        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} after the late takeover");
        await LabMigration.Verify(Lab, A, group);
        LabMigration.AssertUnbroken(group);
        (await Lab.On(Lab.Node(A)).Run("stop", group.Name)).Ok();
    }

    /// <summary>
    /// (b) with a late takeover still in progress when the source asks: the takeover reaches node-b
    /// late (as above) and is held there with the group restored and frozen. Once healed, the source
    /// abandons the migration: node-b stops that takeover (kills what it restored) before it answers
    /// that it does not run the group, and the source resumes it: it never ran on both nodes.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task AbandonWhileALateTakeOverRestores_StopsIt_SourceResumes()
    {
        var group = await Groups.Launch("late-restoring");
        var mark = await LabEvents.LastSeq(Lab, A, group.Name);
        var (late, resume) = (Groups.Gate(B, group.Name, "takeover-late"), Groups.Gate(B, group.Name, "takeover-resume"));
        Directory.CreateDirectory(Path.GetDirectoryName(resume)!);
        await File.WriteAllTextAsync(resume, "");
        try
        {
            try
            {
                var failed = (await (await StartHeldAndCut(group, late))).FailsWithOneLine();
                Assert.Contains("outcome unknown", failed.Stderr);
                // The late takeover goes on, restores the group on node-b and holds it there, frozen.
                File.Delete(late);
                await LabSession.WaitUntil(() => File.Exists(resume + ".held"), $"{B} restoring {group.Name} late", () => HeldMigrationGroups.Tail(Groups.AgentLog(B)));
            }
            finally
            {
                (await Lab.Lab("heal", Lab.Dir, B)).Ok();
            }
            var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", mark);
            Assert.Contains("does not run there", settled.Message);
            Assert.Contains($"Migration of group {group.Name} from checkpoint", Groups.AgentLog(B));
            Assert.Contains("fenced while its takeover was in progress: stopping it", Groups.AgentLog(B));
        }
        finally
        {
            File.Delete(late);
            File.Delete(resume);
        }

        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} once settled");
        await LabMigration.Verify(Lab, A, group);
        LabMigration.AssertUnbroken(group);
        (await Lab.On(Lab.Node(A)).Run("stop", group.Name)).Ok();
    }

    /// <summary>
    /// migrate, held at <paramref name="moment"/> on <paramref name="node"/>; node-b is cut off there,
    /// then (with <paramref name="release"/>) the migration goes on into the cut link. Returns migrate's end.
    /// </summary>
    private async Task<HactlResult> MigrateCutAt(LabGroup group, string node, string moment, bool release)
    {
        var gate = Groups.Gate(node, group.Name, moment);
        var migrate = await StartHeldAndCut(group, gate);
        if (release)
        {
            File.Delete(gate);
        }
        return await migrate;
    }

    /// <summary>
    /// Status on the source says why the group does not run there (its members say frozen), with or
    /// without a supervisor: it is held frozen until its migration is settled.
    /// </summary>
    private async Task AssertHeldFrozen(LabGroup group)
    {
        var status = await Status(A, group);
        Assert.Equal("migrating", status.Str("state"));
        Assert.Equal($"frozen here: its migration to node {B} is not settled yet", status.Str("frozenBecause"));
        Assert.All(status.GetProperty("members").EnumerateArray(), m => Assert.Equal("frozen", m.Str("state")));
        var text = (await Lab.On(Lab.Node(A)).Run(["status", group.Name], json: false)).Ok().Stdout;
        Assert.Contains($"group {group.Name}: migrating", text);
        Assert.Contains($"  frozen here: its migration to node {B} is not settled yet", text);
    }

    /// <summary>
    /// Once healed, node-a learnt that the group does not run on node-b and resumed its copy: every
    /// member runs, the same pids, none on node-b, memory verifies, the counters with no gap or repeat.
    /// </summary>
    private async Task AssertResumedAtTheSource(LabGroup group, long mark)
    {
        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", mark);
        Assert.Contains("does not run there", settled.Message);
        Assert.Contains("it runs on here", settled.Message);
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} once settled");
        Assert.All((await Status(A, group)).GetProperty("members").EnumerateArray(), m => Assert.Equal("running", m.Str("state")));
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        await LabMigration.Verify(Lab, A, group);
        LabMigration.AssertUnbroken(group);
    }

    /// <summary>
    /// Once healed, node-a learnt that the group runs on node-b and ended its whole frozen copy: no
    /// member or process of it left on node-a; node-b runs it with the same pids, memory verifies, the
    /// counters with no gap or repeat.
    /// </summary>
    private async Task AssertEndedAtTheSource(LabGroup group, long mark, IReadOnlyList<LabMember> before)
    {
        var settled = await LabEvents.WaitFor(Lab, A, group.Name, "migration.settled", mark);
        Assert.Contains("runs there", settled.Message);
        Assert.Contains("its frozen copy here ended", settled.Message);
        Assert.Empty(await LabMigration.Members(Lab, A, group.Name));
        await LabMigration.AssertGoneFrom(Lab, A, group, before);
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, B, group.Name)).Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {B} once settled");
        await LabMigration.Verify(Lab, B, group);
        LabMigration.AssertUnbroken(group);
    }

    private async Task<JsonElement> Status(string node, LabGroup group) =>
        (await Lab.On(Lab.Node(node)).Run("status", group.Name)).Ok().Json.GetProperty("groups")[0];

    /// <summary>
    /// migrate ended without learning the outcome: one line that says so and what follows; the group
    /// stays frozen on node-a, where its supervisor still says it is migrating (and does not recover it),
    /// and it cannot migrate again meanwhile.
    /// </summary>
    private async Task AssertUnknownOutcome(LabGroup group, HactlResult migrate)
    {
        var failed = migrate.FailsWithOneLine();
        Assert.Contains("outcome unknown", failed.Stderr);
        Assert.Contains($"it stays frozen here until node {B} answers", failed.Stderr);
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
        await AssertHeldFrozen(group);
        var availability = (await LabEvents.Show(Lab, A, group.Name)).Prop("availability");
        Assert.Equal("migrating", availability?.Str("state"));
        Assert.Contains($"waiting for it to say whether it runs the group", availability?.Str("reason"));
        var again = (await Lab.On(Lab.Node(A)).Run("migrate", group.Name, "--to", B)).FailsWithOneLine();
        Assert.Contains("is not settled yet", again.Stderr);
        // A checkpoint would end with RESUME and let the frozen copy run beside the target's.
        var checkpoint = (await Lab.On(Lab.Node(A)).Run("checkpoint", group.Name)).FailsWithOneLine();
        Assert.Contains("held frozen here", checkpoint.Stderr);
        Assert.Equal(group.Pids, (await LabMigration.Members(Lab, A, group.Name)).Select(m => m.Pid));
    }
}
