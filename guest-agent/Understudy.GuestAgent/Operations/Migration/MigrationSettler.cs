using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>A migration whose outcome was not known when `migrate` returned: the group frozen here, the target still to be asked.</summary>
internal sealed record UnsettledMigration(string Group, string Target, IStandbyLink Link, FrozenGroup Frozen, ISupervisedMigration? Supervised);

/// <summary>
/// How a migration ends on the source once the outcome is known, whether the migration learnt it
/// itself or later (docs/architecture.md, "Moving a live group"): the group runs on the target, so its
/// copy here ends and this node becomes its standby; or it does not, so it runs on here. A migration
/// that could not learn it leaves the group frozen here and hands it over (<see cref="Settle"/>): the
/// target is asked again every <see cref="Retry"/>, for as long as it takes, to abandon the migration
/// (it then never runs it, however late its takeover arrives) and say whether it runs the group; its
/// answer is carried out, unless the operator settled the group first (stopped or restored it here):
/// then nothing is done.
/// </summary>
internal sealed class MigrationSettler : IDisposable
{
    private readonly GroupLifecycles _lifecycles;
    private readonly GroupRegistry _groups;
    private readonly StandbyAssignments _standbys;
    private readonly IEventPublisher _events;
    private readonly AgentOptions _options;
    private readonly ILogger<MigrationSettler> _logger;
    private readonly CancellationTokenSource _stopping = new();
    // Each group frozen by an unsettled migration, with its target.
    private readonly ConcurrentDictionary<string, string> _unsettled = new(StringComparer.Ordinal);

    /// <summary>How often an unsettled migration's target is asked again.</summary>
    public static readonly TimeSpan Retry = TimeSpan.FromSeconds(2);

    public MigrationSettler(
        GroupLifecycles lifecycles, GroupRegistry groups, StandbyAssignments standbys, IEventPublisher events, IOptions<AgentOptions> options,
        ILogger<MigrationSettler> logger)
    {
        _lifecycles = lifecycles;
        _groups = groups;
        _standbys = standbys;
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
    }

    /// <summary>The group does not run on the target: it runs on here, from where it froze.</summary>
    public async Task ResumeHereAsync(FrozenGroup frozen, string group, string target)
    {
        try
        {
            await frozen.ResumeAsync(CancellationToken.None).ConfigureAwait(false);
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
        _ = SettleAsync(migration, hold, _stopping.Token);
    }

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

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private async Task SettleAsync(UnsettledMigration migration, IDisposable hold, CancellationToken stopping)
    {
        var (group, target) = (migration.Group, migration.Target);
        try
        {
            while (true)
            {
                await Task.Delay(Retry, stopping).ConfigureAwait(false);
                if (await AskAsync(migration, stopping).ConfigureAwait(false) is { } runsThere)
                {
                    await _lifecycles.For(group).RunExclusiveAsync(scope => CarryOutAsync(scope, migration, runsThere), stopping).ConfigureAwait(false);
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
            return await migration.Link.AbandonAsync(migration.Group, migration.Frozen.Checkpoint.Id, call.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StandbyLinkException || (e is OperationCanceledException && !stopping.IsCancellationRequested))
        {
            _logger.LogDebug("Migration of group {Group}: node {Node} cannot tell yet whether it runs the group: {Error}", migration.Group, migration.Target, e.Message);
            return null;
        }
    }

    private async Task CarryOutAsync(LifecycleScope scope, UnsettledMigration migration, bool runsThere)
    {
        var (group, target) = (migration.Group, migration.Target);
        if (!StillFrozen(group, migration.Frozen))
        {
            OperatorSettled(migration, runsThere);
            return;
        }
        if (runsThere)
        {
            await EndHereAsync(scope, target, migration.Supervised).ConfigureAwait(false);
            _logger.LogWarning("Migration of group {Group}: node {Node} runs the group; its frozen copy here ended", group, target);
            _events.Publish(new MigrationSettled(group, target, true, "its frozen copy here ended"));
            return;
        }
        await ResumeHereAsync(migration.Frozen, group, target).ConfigureAwait(false);
        if (migration.Supervised is { } supervised)
        {
            await supervised.ResumeAsync().ConfigureAwait(false);
        }
        _events.Publish(new MigrationSettled(group, target, false, "it runs on here"));
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

    /// <summary>The processes frozen for the move are still the group's here: nobody stopped or restored it meanwhile.</summary>
    private bool StillFrozen(string group, FrozenGroup frozen)
    {
        if (_groups.Find(group) is not { Init.HasExited: false } running)
        {
            return false;
        }
        var members = running.Members.Snapshot();
        return frozen.Members.All(held => members.Any(member => ReferenceEquals(member, held)));
    }
}
