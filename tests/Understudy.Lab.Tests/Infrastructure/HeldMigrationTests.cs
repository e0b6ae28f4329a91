using Xunit.Abstractions;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>A shared lab whose agents hold a migration where a test asks them to (UNDERSTUDY_AGENT_FAULT=migration-holds).</summary>
public sealed class SharedLabWithMigrationHolds : SharedLab
{
    public SharedLabWithMigrationHolds()
        : base(new Dictionary<string, string> { ["UNDERSTUDY_AGENT_FAULT"] = "migration-holds" })
    {
    }
}

/// <summary>
/// The migration fault tests of one class: one lab whose agents hold migrations where a test asks,
/// its notes in the output of the test that runs, and the groups the tests move from node-a to node-b.
/// </summary>
public abstract class HeldMigrationTests : IClassFixture<SharedLabWithMigrationHolds>, IDisposable
{
    protected const string A = "node-a", B = "node-b";

    private readonly IDisposable _notes;

    protected HeldMigrationTests(SharedLabWithMigrationHolds shared, ITestOutputHelper output)
    {
        Lab = shared.Lab;
        _notes = shared.For(output);
        Groups = new HeldMigrationGroups(Lab);
    }

    protected LabSession Lab { get; }

    internal HeldMigrationGroups Groups { get; }

    /// <summary>Starts migrate to node-b with the hold file in place, and cuts node-b off once the migration is held there.</summary>
    protected async Task<Task<HactlResult>> StartHeldAndCut(LabGroup group, string gate)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(gate)!);
        await File.WriteAllTextAsync(gate, "");
        group.Log.FollowTo(Lab.Node(B).Log(group.Name).Path);
        var migrate = Lab.On(Lab.Node(A)).Run("migrate", group.Name, "--to", B);
        await LabSession.WaitUntil(() => migrate.IsCompleted || File.Exists(gate + ".held"), $"the migration of {group.Name} held at {Path.GetFileName(gate)}");
        Assert.False(migrate.IsCompleted, $"the migration ended before its hold: {(migrate.IsCompleted ? migrate.Result.ToString() : "")}");
        (await Lab.Lab("partition", Lab.Dir, B)).Ok();
        return migrate;
    }

    /// <summary>
    /// Migrates with the target held before its resume (<paramref name="gate"/>, takeover-resume) and
    /// cuts it off, until the target's end of the takeover finds the caller gone and gives up, its
    /// restore undone. Returns migrate's end, which cannot have learnt the outcome.
    /// </summary>
    protected async Task<HactlResult> CutUntilTheTargetGaveUp(LabGroup group, string gate)
    {
        var migrate = await StartHeldAndCut(group, gate);
        await LabSession.WaitUntil(
            () => Groups.AgentLog(B).Contains($"migration of group {group.Name} held at takeover-resume: the operation was cancelled", StringComparison.Ordinal),
            $"{B} giving up the takeover of {group.Name}", () => HeldMigrationGroups.Tail(Groups.AgentLog(B)));
        Assert.Empty(await LabMigration.Members(Lab, B, group.Name));
        return await migrate;
    }

    public void Dispose()
    {
        _notes.Dispose();
        GC.SuppressFinalize(this);
    }
}
