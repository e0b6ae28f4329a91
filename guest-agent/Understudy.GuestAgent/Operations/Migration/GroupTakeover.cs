using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// The target's side of a migration: runs a group that another node sent here, from the
/// checkpoint it names, through the group's lifecycle (a restore straight from the checkpoint's
/// chain, refused if the group runs here).
/// The restore's cancellation stops it: a source that gave up, or a link that broke, before
/// the restored processes were resumed cancels the call, and the restore kills them. A source that
/// gave up cannot count on its cancellation arriving, so it abandons the migration too
/// (<see cref="AbandonAsync"/>): this node promises, durably, never to run it, whenever its takeover
/// comes (<see cref="MigrationFences"/>), and only then may the source resume its copy. The source
/// becomes the group's standby here: the roles swap. A supervised group brings its policy, which is
/// checked before anything is restored (and already at <see cref="PrepareAsync"/>), and once the
/// group runs here it is stored and the group supervised by it (<see cref="IPolicyHandOver"/>).
/// </summary>
internal sealed class GroupTakeover
{
    private readonly GroupLifecycles _lifecycles;
    private readonly GroupRegistry _groups;
    private readonly CheckpointKeeper _keeper;
    private readonly StandbyAssignments _standbys;
    private readonly IPolicyHandOver _policies;
    private readonly MigrationHolds _holds;
    private readonly MigrationFences _fences;
    private readonly IEventPublisher _events;
    private readonly ILogger<GroupTakeover> _logger;

    public GroupTakeover(
        GroupLifecycles lifecycles, GroupRegistry groups, CheckpointKeeper keeper, StandbyAssignments standbys, IPolicyHandOver policies,
        MigrationHolds holds, MigrationFences fences, IEventPublisher events, ILogger<GroupTakeover> logger)
    {
        _policies = policies;
        _holds = holds;
        _fences = fences;
        _lifecycles = lifecycles;
        _groups = groups;
        _keeper = keeper;
        _standbys = standbys;
        _events = events;
        _logger = logger;
    }

    /// <summary>
    /// Merges checkpoint <paramref name="id"/>'s chain into full images while the group still runs
    /// on the source, so that the takeover, with the group frozen, restores from a chain of two
    /// images per process (that merged one and the last increment) and merges nothing.
    /// </summary>
    /// <param name="policyText">the group's policy, checked here already so that a policy this node refuses fails the migration before the group freezes</param>
    /// <param name="source">the node that asks, by its certificate's name</param>
    /// <returns>whether anything was merged</returns>
    public async Task<bool> PrepareAsync(string group, string id, string? policyText, string source, CancellationToken cancellationToken)
    {
        Require(group, id);
        _policies.Accept(group, policyText, source);
        try
        {
            return await _keeper.MergeForRestoreAsync(group, id, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is CheckpointMergeException or CheckpointNotFoundException or ImageFormatException)
        {
            throw AgentException.FailedPrecondition($"checkpoint {group}/{id} cannot be made ready for a takeover here: {e.Message}", e);
        }
    }

    /// <param name="policyText">the group's policy on the source; null or empty: it has none</param>
    /// <param name="source">the node that asks, by its certificate's name</param>
    public async Task<TakeOverResult> TakeOverAsync(string group, string id, string? policyText, string source, CancellationToken cancellationToken)
    {
        Require(group, id);
        var lifecycle = _lifecycles.For(group);
        var incoming = _policies.Accept(group, policyText, source);
        cancellationToken = await _holds.LateAsync(group, cancellationToken).ConfigureAwait(false);
        // Refused if the source abandoned this migration already; stopped if it does meanwhile.
        using var ticket = _fences.Enter(group, id, source, cancellationToken);
        _logger.LogInformation("Taking over group {Group} from node {Source}: restoring checkpoint {CheckpointId}", group, source, id);
        // One exclusive work: nothing starts or stops the group between its restore and its supervision here.
        var restored = await lifecycle.RunExclusiveAsync(async scope =>
        {
            ticket.Token.ThrowIfCancellationRequested();
            scope.RequireStoppedUnless(force: false, id);
            var outcome = await scope.RestoreAsync(id, new HeldResume(_holds, group), ticket.Token).ConfigureAwait(false);
            if (incoming is not null)
            {
                await incoming.SuperviseAsync(scope).ConfigureAwait(false);
            }
            return outcome;
        }, ticket.Token).ConfigureAwait(false);
        var standby = AssignStandby(group, source);
        _events.Publish(new GroupTakenOver(group, source, id, restored.Members.Count));
        await _holds.AtAsync(MigrationHolds.TakeOverReply, group, cancellationToken).ConfigureAwait(false);
        return new TakeOverResult(restored.Members.Count, restored.DurationMs, standby);
    }

    private static void Require(string group, string id)
    {
        GroupNames.Require(group);
        if (!CheckpointId.TryParse(id, out _))
        {
            throw AgentException.InvalidArgument($"invalid checkpoint id '{id}'");
        }
    }

    /// <summary>
    /// The source gives up the migration that restores checkpoint <paramref name="id"/>: it is fenced
    /// (never run here, durably), a takeover of it in progress is stopped, and once that is over, the
    /// answer says whether the group runs here (a takeover resumed before the fence ran it here).
    /// </summary>
    /// <param name="source">the node that asks, by its certificate's name</param>
    public async Task<bool> AbandonAsync(string group, string id, string source, CancellationToken cancellationToken)
    {
        Require(group, id);
        try
        {
            _fences.Fence(group, id);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw AgentException.Unavailable($"migration of group {group} from checkpoint {id} cannot be fenced here: {e.Message}; ask again", e);
        }
        var runs = await RunsAsync(group, cancellationToken).ConfigureAwait(false);
        _logger.LogWarning("Node {Source} gave up the migration of group {Group} from checkpoint {CheckpointId}; it is fenced here, where the group {Runs}",
            source, group, id, runs ? "runs (resumed before the fence)" : "does not run");
        return runs;
    }

    /// <summary>Whether the group runs here, once a takeover or restore of it in progress is over.</summary>
    private Task<bool> RunsAsync(string group, CancellationToken cancellationToken) =>
        _lifecycles.For(group).RunExclusiveAsync(_ => Task.FromResult(_groups.Find(group) is { IsRunning: true }), cancellationToken);

    private string? AssignStandby(string group, string source)
    {
        try
        {
            _standbys.Assign(group, source);
            return source;
        }
        catch (AgentException e)
        {
            _logger.LogWarning("Group {Group} taken over from node {Source}, which cannot be its standby here: {Problem}", group, source, e.Message);
            return null;
        }
    }
}

/// <summary>The restored group runs on all together, as in any restore, unless a test holds it frozen first (<see cref="MigrationHolds"/>).</summary>
internal sealed class HeldResume(MigrationHolds holds, string group) : IResumeOrder
{
    public async Task ResumeAsync(IReadOnlyList<Model.Members.Member> members, MemberResumer resumer, CancellationToken cancellationToken)
    {
        await holds.AtAsync(MigrationHolds.TakeOverResume, group, cancellationToken).ConfigureAwait(false);
        await ResumeTogether.Instance.ResumeAsync(members, resumer, cancellationToken).ConfigureAwait(false);
    }
}
