using System.Diagnostics;
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
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// Moves a running group to another node of the cluster, live (docs/architecture.md, "Moving a
/// live group"). While the group runs, checkpoints are taken and sent round after round (the first
/// holds what the target lacks, the next ones only the pages written since), until a round is small
/// or stops shrinking. Then, under the group's lifecycle lock, a last checkpoint leaves the group
/// frozen, its increment is sent, and the target restores and runs the group. Only once the target
/// said it runs are the processes here killed; if anything fails before, they are resumed here.
/// The target becomes the primary and this node its standby.
/// </summary>
internal sealed class GroupMigrator
{
    private readonly GroupLifecycles _lifecycles;
    private readonly GroupLocator _locator;
    private readonly CheckpointKeeper _keeper;
    private readonly CheckpointStore _store;
    private readonly CheckpointSender _sender;
    private readonly IStandbyLinks _links;
    private readonly StandbyAssignments _standbys;
    private readonly MigrationSettler _settler;
    private readonly MigrationJournal _journal;
    private readonly MigrationHolds _holds;
    private readonly IEventPublisher _events;
    private readonly AgentOptions _options;
    private readonly ILogger<GroupMigrator> _logger;

    public GroupMigrator(
        GroupLifecycles lifecycles, GroupLocator locator, CheckpointKeeper keeper, CheckpointStore store, CheckpointSender sender, IStandbyLinks links,
        StandbyAssignments standbys, MigrationSettler settler, MigrationJournal journal, MigrationHolds holds, IEventPublisher events, IOptions<AgentOptions> options,
        ILogger<GroupMigrator> logger)
    {
        _lifecycles = lifecycles;
        _locator = locator;
        _keeper = keeper;
        _store = store;
        _sender = sender;
        _links = links;
        _standbys = standbys;
        _settler = settler;
        _journal = journal;
        _holds = holds;
        _events = events;
        _options = options.Value;
        _logger = logger;
    }

    public async Task<MigrationOutcome> MigrateAsync(string group, string target, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        try
        {
            using var pins = new CommitPins(_keeper, group);
            return await RunAsync(group, target, pins, progress, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            _events.Publish(new MigrationFailed(group, target, e.Message));
            throw;
        }
    }

    private async Task<MigrationOutcome> RunAsync(
        string group, string target, CommitPins pins, IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        var lifecycle = _lifecycles.For(group);
        _locator.RequireRunning(group);
        _settler.RequireSettled(group);
        if (_standbys.PeerProblem(target) is { } problem)
        {
            throw AgentException.InvalidArgument($"migration of group {group} to {target} refused: {problem}");
        }
        // A supervised group: its supervisor learns of the migration (and refuses one while the group is
        // not running under it); its policy goes with the group.
        using var supervised = await lifecycle.BeginMigrationAsync(target, cancellationToken).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, supervised?.Faulted ?? CancellationToken.None);
        try
        {
            return await CopyAndMoveAsync(lifecycle, group, target, supervised, pins, progress, stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException or OperationCanceledException
                                  && supervised is { FaultReason: not null } && !cancellationToken.IsCancellationRequested)
        {
            throw FaultedMeanwhile(group, target, supervised, e);
        }
    }

    private static AgentException FaultedMeanwhile(string group, string target, ISupervisedMigration supervised, Exception inner) =>
        AgentException.Aborted(
            $"migration of group {group} to node {target} stopped: the group had a fault meanwhile ({supervised.FaultReason}); " +
            "it stays here, where its supervisor recovers it by its policy", inner);

    private async Task<MigrationOutcome> CopyAndMoveAsync(
        GroupLifecycle lifecycle, string group, string target, ISupervisedMigration? supervised, CommitPins pins,
        IProgress<MigrationProgress>? progress, CancellationToken cancellationToken)
    {
        var link = _links.To(target);
        var meter = new TransferMeter(progress);
        // What crosses to the target for the group while it migrates, sent by the migration or by the
        // group's standby stream when the target is its standby.
        using var counted = _sender.Watch(target, group, meter.Sent);
        // Each round goes while its images are written; the round's own send then finds it there.
        await using var whileWritten = new SendsWhileWritten(_keeper, _sender, target, group, _logger);
        _logger.LogInformation("Migration of group {Group} to node {Node} started", group, target);

        // Copy ahead while the group runs.
        var rounds = 0;
        long? previous = null;
        var lastRound = TimeSpan.Zero;
        while (rounds < _options.MigrationMaxRounds)
        {
            rounds++;
            var round = Stopwatch.StartNew();
            var taken = await CopyAheadAsync(lifecycle, group, target, pins, rounds, meter, cancellationToken).ConfigureAwait(false);
            lastRound = round.Elapsed;
            if (taken.Bytes <= _options.MigrationSmallEnoughBytes || (previous is { } before && taken.Bytes * 5 > before * 4))
            {
                break;
            }
            previous = taken.Bytes;
        }

        // The target checks the policy and merges what it holds into full images now, while the group still runs here.
        var preparing = Stopwatch.StartNew();
        await PrepareTargetAsync(link, group, target, supervised?.PolicyText, cancellationToken).ConfigureAwait(false);
        // A merge there can take seconds, in which the group writes more than in a round: those
        // pages go in one more round while it runs, not in the last one while it is frozen.
        if (preparing.Elapsed > lastRound)
        {
            rounds++;
            await CopyAheadAsync(lifecycle, group, target, pins, rounds, meter, cancellationToken).ConfigureAwait(false);
        }

        // The last round: frozen until the target runs the group, or resumed here.
        rounds++;
        return await lifecycle.RunExclusiveAsync(
            scope => FinalRoundAsync(scope, group, target, link, supervised, pins, rounds, meter, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One round while the group runs: a checkpoint of what changed, sent to the target.</summary>
    private async Task<CheckpointOutcome> CopyAheadAsync(
        GroupLifecycle lifecycle, string group, string target, CommitPins pins, int round, TransferMeter meter, CancellationToken cancellationToken)
    {
        var taken = await CheckpointAsync(lifecycle, group, target, cancellationToken).ConfigureAwait(false);
        meter.Round(MigrationProgress.PreCopy, round, taken.Id, taken.Bytes);
        await SendAsync(pins.Take(taken.Id), target, frozen: false, cancellationToken).ConfigureAwait(false);
        _logger.LogInformation(
            "Migration of group {Group} to node {Node}: round {Round} sent checkpoint {CheckpointId} ({Bytes} bytes)", group, target, round, taken.Id, taken.Bytes);
        return taken;
    }

    private async Task PrepareTargetAsync(IStandbyLink link, string group, string target, string? policyText, CancellationToken cancellationToken)
    {
        if (_store.NewestId(group) is not { } newest)
        {
            return;
        }
        try
        {
            await link.PrepareAsync(group, newest, policyText, cancellationToken).ConfigureAwait(false);
        }
        catch (StandbyLinkException e)
        {
            throw AgentException.Unavailable(
                $"migration of group {group} to node {target} failed: {e.Message}; the group ran on here throughout", e);
        }
    }

    private async Task<CheckpointOutcome> CheckpointAsync(GroupLifecycle lifecycle, string group, string target, CancellationToken cancellationToken)
    {
        try
        {
            // The target holds the chain, or will: only what changed should cross.
            return await lifecycle.CheckpointAsync(
                full: false, GroupCheckpointer.Migration, progress: null, cancellationToken, incrementalWherePossible: true).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw AgentException.Aborted($"migration of group {group} to node {target} stopped: {e.Message}; the group runs on here", e);
        }
    }

    /// <summary>
    /// The last round, the group's lifecycle lock held. A supervised group's supervisor holds off
    /// (the freeze and the final kill are no faults), and follows the outcome: the group handed over,
    /// or resumed here and watched again, or, when the outcome cannot be learnt yet, left frozen
    /// until the target answers (<see cref="MigrationSettler"/>).
    /// </summary>
    private async Task<MigrationOutcome> FinalRoundAsync(
        LifecycleScope scope, string group, string target, IStandbyLink link, ISupervisedMigration? supervised, CommitPins pins, int rounds,
        TransferMeter meter, CancellationToken cancellationToken)
    {
        if (supervised is not null)
        {
            await supervised.HoldAsync(scope).ConfigureAwait(false);
        }
        try
        {
            return await MoveAsync(scope, group, target, link, supervised, pins, rounds, meter, cancellationToken).ConfigureAwait(false);
        }
        catch (UnresolvedMigrationException e)
        {
            supervised?.Unresolved($"the link broke as node {target} was starting the group; waiting for it to say whether it runs the group");
            _settler.Settle(new UnsettledMigration(group, target, e.Frozen.Checkpoint.Id, link, e.Frozen, supervised));
            throw e.Error;
        }
        catch (Exception e) when (supervised is not null && e is AgentException or OperationCanceledException)
        {
            await supervised.ResumeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<MigrationOutcome> MoveAsync(
        LifecycleScope scope, string group, string target, IStandbyLink link, ISupervisedMigration? supervised, CommitPins pins, int rounds,
        TransferMeter meter, CancellationToken cancellationToken)
    {
        var duration = Stopwatch.StartNew();
        FrozenGroup frozen;
        try
        {
            frozen = await scope.CheckpointAndHoldAsync(progress: null, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw AgentException.Aborted($"migration of group {group} to node {target} stopped: {e.Message}; the group runs on here", e);
        }
        using (frozen)
        {
            var id = frozen.Checkpoint.Id;
            meter.Round(MigrationProgress.Final, rounds, id, frozen.Checkpoint.Bytes);
            try
            {
                await _holds.AtAsync(MigrationHolds.FinalSend, group, cancellationToken).ConfigureAwait(false);
                await SendAsync(pins.Take(id), target, frozen: true, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AgentException || e is OperationCanceledException)
            {
                await _settler.ResumeHereAsync(frozen, group, target).ConfigureAwait(false);
                throw e is AgentException ? e : Cancelled(group, target);
            }

            await HoldAcrossRestartsAsync(frozen, group, target, cancellationToken).ConfigureAwait(false);
            meter.Round(MigrationProgress.TakeOver, rounds, id, frozen.Checkpoint.Bytes);
            TakeOverResult? result = null;
            try
            {
                result = await link.TakeOverAsync(group, id, supervised?.PolicyText, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StandbyLinkException || e is OperationCanceledException)
            {
                // Resumed here only once the target has abandoned the migration (it promised never to
                // run it: the takeover may still arrive there late) and says it does not run the
                // group: a refusal is confirmed too, and a lost answer may hide a group that runs there already.
                if (e is not PeerRefusedException)
                {
                    _logger.LogWarning(
                        "Migration of group {Group}: the answer of node {Node} to the takeover was lost ({Error}); abandoning the migration there and asking whether the group runs there",
                        group, target, e.Message);
                }
                if (!await RunsThereAsync(link, group, id, target, frozen, e).ConfigureAwait(false))
                {
                    await _settler.ResumeHereAsync(frozen, group, target).ConfigureAwait(false);
                    throw e switch
                    {
                        OperationCanceledException => Cancelled(group, target),
                        PeerRefusedException => AgentException.Aborted($"migration of group {group} to node {target} failed: {e.Message}; the group runs on here", e),
                        _ => AgentException.Unavailable($"migration of group {group} to node {target} failed: {e.Message}; the group runs on here", e),
                    };
                }
                _logger.LogWarning("Migration of group {Group}: node {Node} runs the group; it ends here", group, target);
            }

            // The group runs on the target: it ends here, and this node becomes its standby. Its policy
            // becomes the standby's copy first: nothing may start the group here again, even should
            // the agent stop before the processes are gone.
            var frozenMs = frozen.FrozenMs;
            await _settler.EndHereAsync(scope, target, supervised).ConfigureAwait(false);
            var outcome = new MigrationOutcome(
                group, target, id, rounds, result?.Members ?? frozen.Checkpoint.Members, meter.BytesSent, frozenMs,
                meter.Elapsed.TotalMilliseconds);
            _events.Publish(new GroupMigrated(group, target, id, rounds, meter.BytesSent, frozenMs));
            _logger.LogInformation(
                "Migration of group {Group} to node {Node} done: checkpoint {CheckpointId}, {Rounds} rounds, {Bytes} bytes sent, frozen {FrozenMs:F1} ms, last round {FinalMs:F1} ms",
                group, target, id, rounds, meter.BytesSent, frozenMs, duration.Elapsed.TotalMilliseconds);
            return outcome;
        }
    }

    /// <summary>
    /// From the takeover on, the group may run on the target: an agent restart here must not let its
    /// copy run again (an ended link thaws a process) nor forget the migration. The migration is
    /// recorded on disk first, then each member is told to HOLD (a lost link keeps it frozen): a
    /// restart between the two finds a record and running processes, and the target, never asked to
    /// take over, answers that it does not run the group. Any failure resumes the group here.
    /// </summary>
    private async Task HoldAcrossRestartsAsync(FrozenGroup frozen, string group, string target, CancellationToken cancellationToken)
    {
        try
        {
            _journal.Record(new MigrationRecord(group, target, frozen.Checkpoint.Id));
            await frozen.HoldAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or MemberPhaseException or OperationCanceledException)
        {
            await _settler.ResumeHereAsync(frozen, group, target).ConfigureAwait(false);
            throw e is OperationCanceledException
                ? Cancelled(group, target)
                : AgentException.Unavailable($"migration of group {group} to node {target} failed: holding the group frozen here for the takeover: {e.Message}; the group runs on here", e);
        }
    }

    /// <summary>
    /// Sends the checkpoint and what the target lacks of its chain. A broken link is tried again
    /// <see cref="SendAttempts"/> times in all, a second apart, each going on from what the target
    /// holds already; a refusal is final.
    /// </summary>
    private async Task SendAsync(CheckpointPin pin, string target, bool frozen, CancellationToken cancellationToken)
    {
        using var owned = pin;
        var (group, id) = (pin.Group, pin.Id);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _sender.SendAsync(target, pin, _ => { }, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (StandbyLinkException e) when (e is not PeerRefusedException && attempt < SendAttempts)
            {
                _logger.LogWarning(
                    "Migration of group {Group}: sending checkpoint {CheckpointId} to node {Node} broke off ({Error}); going on from what it holds",
                    group, id, target, e.Message);
                await Task.Delay(_options.ReplicationRetry, cancellationToken).ConfigureAwait(false);
            }
            catch (StandbyLinkException e)
            {
                var state = frozen ? "the group runs on here" : "the group ran on here throughout";
                throw AgentException.Unavailable($"migration of group {group} to node {target} failed: sending checkpoint {id}: {e.Message}; {state}", e);
            }
        }
    }

    private const int SendAttempts = 3;

    /// <summary>
    /// After a takeover that did not answer yes: abandons the migration on the target (which fences it
    /// there for good) and learns whether the group runs there, trying for at most
    /// <see cref="AgentOptions.MigrationResolveTimeout"/>. If it cannot be reached meanwhile, the group
    /// stays frozen here (resuming it could make it run on both nodes) until the target answers
    /// (<see cref="MigrationSettler"/>).
    /// </summary>
    private async Task<bool> RunsThereAsync(IStandbyLink link, string group, string id, string target, FrozenGroup frozen, Exception lost)
    {
        using var deadline = new CancellationTokenSource(_options.MigrationResolveTimeout);
        string? last = null;
        while (true)
        {
            try
            {
                return await link.AbandonAsync(group, id, deadline.Token).ConfigureAwait(false);
            }
            catch (StandbyLinkException e)
            {
                last = e.Message;
            }
            catch (OperationCanceledException)
            {
            }
            if (deadline.IsCancellationRequested)
            {
                _logger.LogError(
                    "Migration of group {Group}: node {Node} cannot tell whether it runs the group ({Error}); the group stays frozen here until it answers",
                    group, target, last);
                throw new UnresolvedMigrationException(frozen, AgentException.Unavailable(
                    $"migration of group {group} to node {target}: outcome unknown: the link broke as node {target} was starting the group ({lost.Message}), and it has not answered since " +
                    $"({last ?? "no answer"}); so that the group never runs on both nodes, it stays frozen here until node {target} answers, then ends here if it runs there " +
                    $"or runs on here if not ('hactl events {group}' says which); if node {target} is gone for good, 'hactl restore {group} --force' here brings the group back " +
                    "from the checkpoint taken as it froze, with nothing lost"));
            }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Whether the group runs on the target cannot be learnt yet: it stays frozen here (<see cref="Error"/> says what follows).</summary>
    private sealed class UnresolvedMigrationException(FrozenGroup frozen, AgentException error) : Exception(error.Message, error)
    {
        public FrozenGroup Frozen { get; } = frozen;
        public AgentException Error { get; } = error;
    }

    private static AgentException Cancelled(string group, string target) =>
        AgentException.Aborted($"migration of group {group} to node {target} cancelled by the caller; the group runs on here");

    /// <summary>Bytes moved over the link and the rate, reported with each round.</summary>
    private sealed class TransferMeter(IProgress<MigrationProgress>? progress)
    {
        private readonly Stopwatch _elapsed = Stopwatch.StartNew();
        private long _bytes;
        // The round being sent, replaced whole: the sender reports bytes from another thread.
        private volatile MigrationProgress _round = new("", 0, "", 0, 0, 0);
        private long _lastReport;

        public long BytesSent => Interlocked.Read(ref _bytes);
        public TimeSpan Elapsed => _elapsed.Elapsed;

        public void Round(string phase, int round, string id, long bytes)
        {
            _round = new MigrationProgress(phase, round, id, bytes, 0, 0);
            Report();
        }

        public void Sent(long bytes)
        {
            Interlocked.Add(ref _bytes, bytes);
            // At most about ten reports a second.
            var now = _elapsed.ElapsedMilliseconds;
            if (now - Interlocked.Read(ref _lastReport) >= 100)
            {
                Interlocked.Exchange(ref _lastReport, now);
                Report();
            }
        }

        private void Report()
        {
            var (seconds, sent) = (_elapsed.Elapsed.TotalSeconds, BytesSent);
            progress?.Report(_round with { BytesSent = sent, BytesPerSecond = seconds > 0 ? sent / seconds : 0 });
        }
    }
}
