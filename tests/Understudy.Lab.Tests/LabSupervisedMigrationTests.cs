using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// `hactl migrate` of a supervised group (one with a policy, docs/policy.md) between the nodes of a
/// real lab: the policy goes with the group, the target supervises it (a kill -9 there is recovered
/// there), the source keeps the policy as the standby's copy and never starts the group again (not
/// even when its agent restarts with `autostart: true`), and the move itself is no fault on the
/// source. A migration that fails leaves the group supervised where it was, and a real fault while
/// the group is copied ahead stops the migration and is recovered at the source. One lab for the class.
/// </summary>
public sealed class LabSupervisedMigrationTests : IClassFixture<SharedLab>, IDisposable
{
    private const string A = "node-a", B = "node-b";
    private static readonly string[] Tags = ["c count", "count"];
    private static readonly string[] Roles = ["counter-c", "memory"];
    // What the supervisor publishes when it takes a fault for one, or stops the group on its own.
    private static readonly string[] FaultTypes = ["fault.detected", "recovery.started", "recovery.finished", "recovery.failed", "group.failed", "group.stopped", "group.starting"];

    private readonly LabSession _lab;
    private readonly IDisposable _notes;

    public LabSupervisedMigrationTests(SharedLab shared, ITestOutputHelper output)
    {
        _lab = shared.Lab;
        _notes = shared.For(output);
    }

    public void Dispose() => _notes.Dispose();

    [Fact, Trait("Category", "Integration")]
    public async Task SupervisedGroup_MovesThereAndBack_WithItsPolicy_SupervisedWhereItRuns_NeverStartedAtTheStandby()
    {
        var group = await StartSupervised("moved", standby: B, memoryMiB: 32, checkpoints: "interval: 2s\n  fullEvery: 10\n  retention: 3");

        // node-a -> node-b: no fault there meanwhile; node-b supervises it by the same policy, standby node-a.
        var mark = await LastSeq(A, group.Name);
        await LabMigration.Move(_lab, group, A, B);
        var onA = await Events(A, group.Name, mark);
        Assert.Contains(onA, e => e.Type == "group.migrated");
        Assert.DoesNotContain(onA, e => FaultTypes.Contains(e.Type));
        await AssertSupervisedOn(B, group.Name, standby: A);
        await AssertStandbyCopyOn(A, group.Name, runsOn: B);
        await LabMigration.Verify(_lab, B, group);
        LabMigration.AssertUnbroken(group);

        // node-b's supervisor owns it: a kill -9 there is recovered there, from the checkpoints it has.
        await KillAndRecover(B, group);

        // node-a's agent restarts (its node crashes, comes back): autostart starts nothing there.
        var restarted = await LastSeq(A, group.Name);
        (await _lab.Lab("crash", _lab.Dir, A)).Ok();
        (await _lab.Lab("start", _lab.Dir, A)).Ok();
        // Long enough for an autostart to have begun: node-b streams a checkpoint taken after the restart to node-a.
        await WaitForNewCheckpointOnStandby(group.Name, primary: B);
        Assert.DoesNotContain(await Events(A, group.Name, restarted), e => FaultTypes.Contains(e.Type) || e.Type == "member.launched");
        await AssertStandbyCopyOn(A, group.Name, runsOn: B);
        Assert.Empty(await LabMigration.Members(_lab, A, group.Name));
        await LabMigration.AssertGoneFrom(_lab, A, group, []);
        var started = (await _lab.On(_lab.Node(A)).Run("group", "start", group.Name)).FailsWithOneLine();
        Assert.Contains($"runs on node {B}", started.Stderr);

        // And back: node-a supervises it again, node-b keeps the copy.
        mark = await LastSeq(B, group.Name);
        var back = group with { Pids = (await LabMigration.Members(_lab, B, group.Name)).Select(m => m.Pid).ToList() };
        await LabMigration.Move(_lab, back, B, A);
        Assert.DoesNotContain(await Events(B, group.Name, mark), e => FaultTypes.Contains(e.Type));
        await AssertSupervisedOn(A, group.Name, standby: B);
        await AssertStandbyCopyOn(B, group.Name, runsOn: A);
        await KillAndRecover(A, back);
        (await _lab.On(_lab.Node(A)).Run("group", "stop", group.Name)).Ok();
    }

    [Fact, Trait("Category", "Integration")]
    public async Task TargetCrashesMidCopy_GroupStaysSupervisedAtTheSource_AndIsRecoveredThere()
    {
        // No standby and no schedule: the first round is the whole 256 MiB, long enough to be cut.
        var group = await StartSupervised("kept", standby: null, memoryMiB: 256, checkpoints: "interval: off");
        try
        {
            await FailThenRecover(group);
        }
        finally
        {
            // The next test needs both nodes (node-b is down unless the test failed before it crashed).
            await _lab.Lab("start", _lab.Dir, B);
        }
    }

    private async Task FailThenRecover(LabGroup group)
    {
        var mark = await LastSeq(A, group.Name);
        var migrate = await LabMigration.StartUntilTheFirstRoundArrives(_lab, group.Name, A, B);
        (await _lab.Lab("crash", _lab.Dir, B)).Ok();

        var failed = (await migrate).FailsWithOneLine();
        Assert.Contains($"to node {B} failed", failed.Stderr);
        Assert.Contains("the group ran on here throughout", failed.Stderr);
        Assert.Equal(group.Pids, (await LabMigration.Members(_lab, A, group.Name)).Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} after the failed migration");
        Assert.Equal("running", (await Show(A, group.Name)).Prop("availability")?.Str("state"));
        var meanwhile = await Events(A, group.Name, mark);
        Assert.Contains(meanwhile, e => e.Type == "migration.failed");
        Assert.DoesNotContain(meanwhile, e => FaultTypes.Contains(e.Type));
        LabMigration.AssertUnbroken(group);

        // Still supervised on node-a: a kill -9 is recovered there.
        await KillAndRecover(A, group);
        (await _lab.On(_lab.Node(A)).Run("group", "stop", group.Name)).Ok();
    }

    [Fact, Trait("Category", "Integration")]
    public async Task MemberKilledWhileCopiedAhead_MigrationStops_SupervisorRecoversTheGroupAtTheSource()
    {
        var group = await StartSupervised("faulted", standby: null, memoryMiB: 256, checkpoints: "interval: off");
        var mark = await LastSeq(A, group.Name);
        var migrate = await LabMigration.StartUntilTheFirstRoundArrives(_lab, group.Name, A, B);
        var members = await LabMigration.Members(_lab, A, group.Name);
        var victim = members.Max(m => m.HostPid);
        (await _lab.Exec(A, "/bin/sh", "-c", string.Create(CultureInfo.InvariantCulture, $"kill -9 {victim}"))).Ok();

        // A real fault: the migration stops, and the supervisor recovers the group where it is.
        var failed = (await migrate).FailsWithOneLine();
        Assert.Contains($"migration of group {group.Name} to node {B}", failed.Stderr);
        var fault = await WaitForEvent(A, group.Name, "fault.detected", mark);
        await WaitForEvent(A, group.Name, "recovery.finished", fault.Seq);
        Assert.Contains(await Events(A, group.Name, mark), e => e.Type == "migration.failed");
        var after = await LabMigration.WaitForMembers(_lab, A, group.Name, group.Pids.Count);
        Assert.Equal(group.Pids, after.Select(m => m.Pid));
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {A} after the recovery");
        await LabMigration.Verify(_lab, A, group);
        Assert.Equal("running", (await Show(A, group.Name)).Prop("availability")?.Str("state"));
        Assert.Empty(await LabMigration.Members(_lab, B, group.Name));
        (await _lab.On(_lab.Node(A)).Run("group", "stop", group.Name)).Ok();
    }

    /// <summary>Applies a policy on node-a (wl_counter and wl_memory, restored on a fault) and starts the group; returns it once it counts.</summary>
    private async Task<LabGroup> StartSupervised(string name, string? standby, int memoryMiB, string checkpoints)
    {
        var policy = $"""
            group: {name}
            autostart: true
            {(standby is null ? "" : $"standby: {standby}")}
            checkpoints:
              {checkpoints}
            recovery:
              action: restore
              maxAttempts: 5
              window: 10m
            apps:
              - name: counter
                command: {Repo.Workload("wl_counter")}
                args: [c]
              - name: memory
                command: {Repo.Workload("wl_memory")}
                args: ["{memoryMiB.ToString(CultureInfo.InvariantCulture)}"]
                health:
                  - alive: true
                    interval: 1s
            """;
        var path = Path.Combine(_lab.Dir, name + ".yaml");
        await File.WriteAllTextAsync(path, policy);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var onA = _lab.On(_lab.Node(A));
        (await onA.Run("group", "apply", "-f", path)).Ok();
        (await onA.Run("group", "start", name)).Ok();
        var log = _lab.Node(A).Log(name);
        await LabMigration.WaitForCounts(new LabGroup(name, log, Tags, Roles, []), 3, 0, $"on {A}");
        var members = await LabMigration.WaitForMembers(_lab, A, name, 2);
        return new LabGroup(name, log, Tags, Roles, members.Select(m => m.Pid).ToList());
    }

    /// <summary>kill -9 of the memory process on <paramref name="node"/>: the supervisor there restores the group, same pids, and each process verifies itself.</summary>
    private async Task KillAndRecover(string node, LabGroup group)
    {
        var mark = await LastSeq(node, group.Name);
        var members = await LabMigration.Members(_lab, node, group.Name);
        Assert.Equal(group.Pids, members.Select(m => m.Pid));
        var victim = members.Max(m => m.HostPid);
        (await _lab.Exec(node, "/bin/sh", "-c", string.Create(CultureInfo.InvariantCulture, $"kill -9 {victim}"))).Ok();
        var recovered = await WaitForEvent(node, group.Name, "recovery.finished", mark);
        _lab.Note($"{group.Name} recovered on {node}: {recovered.Message}");
        var after = await LabMigration.WaitForMembers(_lab, node, group.Name, group.Pids.Count);
        Assert.Equal(group.Pids, after.Select(m => m.Pid));
        Assert.DoesNotContain(after, m => m.HostPid == victim);
        await LabMigration.WaitForCounts(group, 3, group.Log.Length, $"on {node} after the recovery");
        await LabMigration.Verify(_lab, node, group);
        Assert.Equal("running", (await Show(node, group.Name)).Prop("availability")?.Str("state"));
    }

    private async Task AssertSupervisedOn(string node, string group, string standby)
    {
        var show = await Show(node, group);
        Assert.Equal("running", show.Prop("availability")?.Str("state"));
        Assert.Equal("2s", show.Prop("checkpoints")?.Str("interval"));
        Assert.Equal(3L, show.Prop("checkpoints")?.Long("retention"));
        Assert.Equal("restore", show.Prop("recovery")?.Str("action"));
        Assert.True(show.Autostart(), $"autostart kept on {node}: {show}");
        Assert.Contains($"standby: {standby}", show.Str("policyYaml"));
    }

    private async Task AssertStandbyCopyOn(string node, string group, string runsOn)
    {
        var availability = (await Show(node, group)).Prop("availability");
        Assert.Equal("standby", availability?.Str("state"));
        Assert.Contains($"runs on node {runsOn}", availability?.Str("reason"));
        var status = (await _lab.On(_lab.Node(node)).Run(["status", group], json: false)).Ok().Stdout;
        Assert.Contains("availability: standby", status);
    }

    /// <summary>Until the group's primary has streamed a checkpoint to its standby that it took after this call.</summary>
    private async Task WaitForNewCheckpointOnStandby(string group, string primary)
    {
        var on = _lab.On(_lab.Node(primary));
        var now = (await on.Run("checkpoint", group)).Ok().Json.Str("id")!;
        // Scheduled checkpoints go on meanwhile: the one replicated last may be newer.
        await StandbyReplication.WaitAsync(on, group,
            r => r.Str("state") == "in-sync" && string.CompareOrdinal(r.Str("lastReplicated"), now) >= 0, $"checkpoint {now} or a newer one replicated");
    }

    private Task<JsonElement> Show(string node, string group) => LabEvents.Show(_lab, node, group);

    private Task<IReadOnlyList<LabEvent>> Events(string node, string group, long after) => LabEvents.Since(_lab, node, group, after);

    private Task<long> LastSeq(string node, string group) => LabEvents.LastSeq(_lab, node, group);

    private Task<LabEvent> WaitForEvent(string node, string group, string type, long after) => LabEvents.WaitFor(_lab, node, group, type, after);
}

internal static class GroupShowJson
{
    public static bool Autostart(this JsonElement show) => show.Prop("autostart") is { ValueKind: JsonValueKind.True };
}
