using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>A migration whose outcome was not known when `migrate` returned: the group frozen here, the target still to be asked.</summary>
/// <param name="Frozen">the group as the migration froze it; null once an agent restart came in between: its
/// members then relinked held frozen (docs/protocol.md, HOLD), and those are the copy here.</param>
internal sealed record UnsettledMigration(
    string Group, string Target, string CheckpointId, IStandbyLink Link, FrozenGroup? Frozen, ISupervisedMigration? Supervised);

/// <summary>
/// How a migration ends on the source once the outcome is known, whether the migration learnt it
/// itself or later (docs/architecture.md, "Moving a live group"): the group runs on the target, so its
/// copy here ends and this node becomes its standby; or it does not, so it runs on here. A migration
/// that could not learn it leaves the group frozen here and hands it over (<see cref="Settle"/>): the
/// target is asked again every <see cref="Retry"/>, for as long as it takes, to abandon the migration
/// (it then never runs it, however late its takeover arrives) and say whether it runs the group; its
/// answer is carried out, unless the operator settled the group first (stopped or restored it here):
/// then nothing is done. Each migration is recorded on disk until it ended here
/// (<see cref="MigrationJournal"/>): at agent start the recorded ones are taken up again
/// (<see cref="StartAsync"/>), their processes held frozen across the restart.
/// </summary>
internal sealed class MigrationSettler : IHostedService, IDisposable
{
    private readonly GroupLifecycles _lifecycles;
    private readonly GroupRegistry _groups;
    private readonly StandbyAssignments _standbys;
    private readonly MigrationJournal _journal;
    private readonly IStandbyLinks _links;
    private readonly CheckpointCoordinator _coordinator;
    private readonly IEventPublisher _events;
    private readonly AgentOptions _options;
    private readonly ILogger<MigrationSettler> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;
    // Each group frozen by an unsettled migration, with its target.
    private readonly ConcurrentDictionary<string, string> _unsettled = new(StringComparer.Ordinal);
    // The supervisors' part in migrations taken up at agent start, handed over as they adopt their groups.
    private readonly ConcurrentDictionary<string, ISupervisedMigration> _supervisedAfterRestart = new(StringComparer.Ordinal);

    /// <summary>How often an unsettled migration's target is asked again.</summary>
    public static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);

    /// <summary>After an agent restart, how long the held processes are waited for to register again before the copy here is resumed.</summary>
    private static readonly TimeSpan RelinkPatience = TimeSpan.FromSeconds(10);

    public MigrationSettler(
        GroupLifecycles lifecycles, GroupRegistry groups, StandbyAssignments standbys, MigrationJournal journal, IStandbyLinks links,
        CheckpointCoordinator coordinator, IEventPublisher events, IOptions<AgentOptions> options, ILogger<MigrationSettler> logger)
    {
        _lifecycles = lifecycles;
        _groups = groups;
        _standbys = standbys;
        _journal = journal;
        _links = links;
        _coordinator = coordinator;
        _events = events;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>
    /// The group runs on <paramref name="target"/>: a supervised group's policy becomes the standby's
    /// copy first (nothing may start the group here again), then its frozen processes here are killed,
    /// and it has no standby here any more.
    /// </summary>
    public async Task EndHereAsync(LifecycleScope scope, string target, ISupervisedMigration? supervised)
    {
        supervised?.HandedOver(target);
        await scope.StopAsync().ConfigureAwait(false);
        _standbys.Assign(scope.Group, null);
        _journal.Remove(scope.Group);
    }

    /// <summary>The group does not run on the target: it runs on here, from where it froze.</summary>
    public async Task ResumeHereAsync(FrozenGroup frozen, string group, string target)
    {
        try
        {
            await frozen.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
            _journal.Remove(group);
            _logger.LogWarning("Migration of group {Group} to node {Node} failed; the group runs on here", group, target);
        }
        catch (Exception e) when (e is AgentException or MemberPhaseException)
        {
            _logger.LogError("Migration of group {Group}: resuming it here failed: {Error}", group, e.Message);
        }
    }

    /// <summary>Asks the target until it answers, in the background, then ends the group here or resumes it.</summary>
    public void Settle(UnsettledMigration migration)
    {
        _unsettled[migration.Group] = migration.Target;
        // No checkpoint meanwhile: its RESUME would let the group run here while it may run there.
        var hold = _lifecycles.For(migration.Group).HoldFrozen($"its migration to node {migration.Target} is not settled yet");
        // The copy frozen here is this us-init's: a stop ends it, a restore replaces it.
        var copy = _groups.Find(migration.Group)?.Init;
        _ = SettleAsync(migration, copy, hold, _stopping.Token);
    }

    /// <summary>
    /// At agent start, once the running groups were taken up: each migration recorded as unsettled is
    /// settled as if `migrate` had just left it so. Its processes relinked (or relink) held frozen.
    /// </summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var record in _journal.ReadAll())
        {
            TakeUp(record);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        return Task.CompletedTask;
    }

    private void TakeUp(MigrationRecord record)
    {
        var (group, target) = (record.Group, record.Target);
        IStandbyLink link;
        try
        {
            link = _links.To(target);
        }
        catch (StandbyLinkException e)
        {
            _logger.LogError(
                "Migration of group {Group} to node {Node} is not settled, but that node cannot be asked ({Error}); the group stays frozen here: " +
                "if node {Node} runs the group, stop it here ('hactl stop {Group}'); if not, 'hactl restore {Group} --force' brings it back here", group, target,
                e.Message, target, group, group);
            _unsettled[group] = target;
            // Held for good (until the operator stops or restores it): a checkpoint's RESUME would thaw it.
            _ = _lifecycles.For(group).HoldFrozen($"its migration to node {target} is not settled, and that node is no peer of this one");
            return;
        }
        var held = _groups.Find(group) is { Init.HasExited: false } running ? ProcFs.ProcessesInNamespaceOf(running.Init.HostPid).Count : 0;
        _logger.LogWarning(
            "Migration of group {Group} to node {Node} (checkpoint {CheckpointId}) was not settled when the agent stopped; its {Processes} processes stay frozen here until node {Node} answers",
            group, target, record.CheckpointId, held, target);
        _events.Publish(new MigrationTakenUp(group, target, record.CheckpointId, held));
        Settle(new UnsettledMigration(group, target, record.CheckpointId, link, Frozen: null, Supervised: null));
    }

    /// <summary>The target of the group's migration while it is not settled; null otherwise.</summary>
    public string? UnsettledTarget(string group) => _unsettled.TryGetValue(group, out var target) ? target : null;

    /// <summary>
    /// The group's supervisor, adopting it after an agent restart, takes part in its unsettled migration:
    /// it stays migrating until the migration is settled, then resumes or hands the group over.
    /// </summary>
    public void Supervise(string group, ISupervisedMigration supervised) => _supervisedAfterRestart[group] = supervised;

    /// <summary>A group frozen by a migration not settled yet cannot migrate again meanwhile.</summary>
    /// <exception cref="AgentException">FailedPrecondition: it is.</exception>
    public void RequireSettled(string group)
    {
        if (_unsettled.TryGetValue(group, out var target))
        {
            throw AgentException.FailedPrecondition(
                $"migration of group {group} refused: its migration to node {target} is not settled yet (the group is frozen here until node {target} says whether it runs it; see hactl events {group})");
        }
    }

    // Disposed twice: the container disposes both its singleton and the hosted service it hands out.
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private async Task SettleAsync(UnsettledMigration migration, InitProcess? copy, IDisposable hold, CancellationToken stopping)
    {
        var (group, target) = (migration.Group, migration.Target);
        try
        {
            while (true)
            {
                await Task.Delay(Retry, stopping).ConfigureAwait(false);
                if (await AskAsync(migration, stopping).ConfigureAwait(false) is { } runsThere
                    && await _lifecycles.For(group).RunExclusiveAsync(scope => CarryOutAsync(scope, migration, copy, runsThere), stopping).ConfigureAwait(false))
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            _logger.LogWarning("Migration of group {Group} to node {Node} still unsettled as the agent stops; the group stays frozen here", group, target);
        }
        catch (Exception e) when (e is AgentException or IOException or InvalidOperationException)
        {
            _logger.LogError("Migration of group {Group} to node {Node}: settling it failed: {Error}", group, target, e.Message);
        }
        finally
        {
            hold.Dispose();
            _unsettled.TryRemove(group, out _);
        }
    }

    /// <summary>Whether the group runs on the target, once it abandoned the migration; null while it cannot be reached.</summary>
    private async Task<bool?> AskAsync(UnsettledMigration migration, CancellationToken stopping)
    {
        using var call = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        call.CancelAfter(_options.MigrationResolveTimeout);
        try
        {
            // Abandoned first: the target promises never to run the migration, even should its takeover arrive there late.
            return await migration.Link.AbandonAsync(migration.Group, migration.CheckpointId, call.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StandbyLinkException || (e is OperationCanceledException && !stopping.IsCancellationRequested))
        {
            _logger.LogDebug("Migration of group {Group}: node {Node} cannot tell yet whether it runs the group: {Error}", migration.Group, migration.Target, e.Message);
            return null;
        }
    }

    /// <summary>Ends the group here or resumes it; false when it cannot be done yet (a supervisor has still to take the group up).</summary>
    private async Task<bool> CarryOutAsync(LifecycleScope scope, UnsettledMigration migration, InitProcess? copy, bool runsThere)
    {
        var (group, target) = (migration.Group, migration.Target);
        var asFrozen = migration.Frozen is { } frozenHere && FrozenAsItWas(group, frozenHere);
        if (migration.Frozen is null)
        {
            if (_lifecycles.For(group).IsSupervised && _groups.Find(group) is { Init.HasExited: false } && !_supervisedAfterRestart.ContainsKey(group))
            {
                return false; // its supervisor adopts the group first, and then follows the outcome
            }
            if (_supervisedAfterRestart.TryRemove(group, out var adopted))
            {
                migration = migration with { Supervised = adopted };
            }
        }
        if (!asFrozen)
        {
            // Taken up after an agent restart, or a member's link broke meanwhile: the held processes
            // relink by themselves, with a back-off, as new members.
            await WaitForRelinksAsync(group).ConfigureAwait(false);
        }
        if (_groups.Find(group) is not { Init: { HasExited: false } init } || !ReferenceEquals(init, copy))
        {
            OperatorSettled(migration, runsThere);
            return true;
        }
        if (runsThere)
        {
            await EndHereAsync(scope, target, migration.Supervised).ConfigureAwait(false);
            _logger.LogWarning("Migration of group {Group}: node {Node} runs the group; its frozen copy here ended", group, target);
            _events.Publish(new MigrationSettled(group, target, true, "its frozen copy here ended"));
            return true;
        }
        if (asFrozen && migration.Frozen is { } frozen)
        {
            await ResumeHereAsync(frozen, group, target).ConfigureAwait(false);
        }
        else
        {
            await ResumeHeldAsync(group, target).ConfigureAwait(false);
        }
        if (migration.Supervised is { } supervised)
        {
            await supervised.ResumeAsync().ConfigureAwait(false);
        }
        _events.Publish(new MigrationSettled(group, target, false, "it runs on here"));
        return true;
    }

    /// <summary>
    /// The operator stopped or restored the group here before the target answered. Stopped, and the
    /// group runs on the target: this node becomes its standby, as after any move (a supervised
    /// group's policy the standby's copy, so that nothing starts it here again). Otherwise the
    /// operator's choice stands; a group that now runs on both nodes is reported.
    /// </summary>
    private void OperatorSettled(UnsettledMigration migration, bool runsThere)
    {
        var (group, target) = (migration.Group, migration.Target);
        _journal.Remove(group);
        string outcome;
        if (runsThere && _groups.Find(group) is not { IsRunning: true })
        {
            migration.Supervised?.HandedOver(target);
            _standbys.Assign(group, null);
            outcome = "the operator had stopped it here meanwhile; this node is its standby now";
        }
        else
        {
            migration.Supervised?.Release();
            outcome = runsThere
                ? "the operator had restored it here meanwhile, so it runs on both nodes: stop it on one of them"
                : "the operator had settled it here meanwhile; nothing done";
        }
        _logger.LogWarning("Migration of group {Group}: node {Node} answered that it {Runs} the group; {Outcome}",
            group, target, runsThere ? "runs" : "does not run", outcome);
        _events.Publish(new MigrationSettled(group, target, runsThere, outcome));
    }

    /// <summary>Every member frozen for the move is still registered as it was: none lost its link and relinked since.</summary>
    private bool FrozenAsItWas(string group, FrozenGroup frozen)
    {
        var members = _groups.Find(group)?.Members.Snapshot() ?? [];
        return frozen.Members.All(held => members.Any(member => ReferenceEquals(member, held)));
    }

    /// <summary>Until every process of the group is a member again, or <see cref="RelinkPatience"/> passed.</summary>
    private async Task WaitForRelinksAsync(string group)
    {
        var deadline = DateTime.UtcNow + RelinkPatience;
        while (_groups.Find(group) is { Init: { HasExited: false } init } running && DateTime.UtcNow < deadline)
        {
            var registered = running.Members.Snapshot().Select(m => m.HostPid).ToHashSet();
            if (ProcFs.ProcessesInNamespaceOf(init.HostPid).All(registered.Contains))
            {
                return;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// RESUME to the group's frozen members, registered again since it froze (across an agent restart,
    /// or after a broken link): the group runs on here, from where it froze. The record goes first: a held process that registers after the members were listed is then
    /// resumed on its own (<see cref="LateHeldRelinks"/>), and so is every held one if the agent stops
    /// before they were resumed.
    /// </summary>
    private async Task ResumeHeldAsync(string group, string target)
    {
        _journal.Remove(group);
        var running = _groups.Find(group);
        var held = running?.Members.Snapshot().Where(m => m.State == MemberState.Frozen).ToList() ?? [];
        var unregistered = running?.Init is { HasExited: false } init
            ? ProcFs.ProcessesInNamespaceOf(init.HostPid).Count(pid => running.Members.Snapshot().All(m => m.HostPid != pid))
            : 0;
        try
        {
            await _coordinator.ResumeHeldAsync(held, CancellationToken.None).ConfigureAwait(false);
            _logger.LogWarning("Migration of group {Group} to node {Node} failed; the group runs on here ({Members} processes resumed)", group, target, held.Count);
        }
        catch (Exception e) when (e is AgentException or MemberPhaseException)
        {
            _logger.LogError("Migration of group {Group}: resuming it here failed: {Error}", group, e.Message);
        }
        if (unregistered > 0)
        {
            _logger.LogWarning(
                "Migration of group {Group}: {Count} of its processes have not registered again since the agent restart; each is resumed " +
                "when it does, and until then it stays frozen ('hactl restore {Group} --force' brings the group back from its last checkpoint)",
                group, unregistered, group);
        }
    }
}
