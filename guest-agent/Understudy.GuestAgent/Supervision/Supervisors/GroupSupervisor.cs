using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Migration;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;
using Understudy.Images;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// Keeps one group available under its policy: starts it in launch order, watches it (exits as
/// us-init reports them, health checks, periodic checkpoints), and on a fault asks the recovery
/// decider (<see cref="IRecoveryDecider"/>) what to do and does it for the whole group, or marks it
/// failed. Every transition (start, stop, restart, recovery, restore, retirement) is exclusive work
/// on the group's lifecycle (<see cref="GroupLifecycle.RunExclusiveAsync{T}"/>), so they happen one
/// at a time and nothing else starts or stops the group meanwhile; a stop interrupts a start or
/// recovery in progress. The lifecycle hands the operator's stop and restore of the group here
/// (<see cref="IGroupSupervision"/>). A migration of the group to another node holds the supervisor
/// off its last round (<see cref="SupervisedMigration"/>); once the group runs there, this node keeps
/// the policy as the standby's copy (<see cref="SupervisionState.Standby"/>) and starts nothing by it,
/// and the target's supervisor takes the group up where it is (<see cref="TakeUpAsync"/>).
/// </summary>
internal sealed class GroupSupervisor : IGroupSupervision
{
    private static readonly TimeSpan ExitReportPatience = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RegistrationPoll = TimeSpan.FromMilliseconds(200);

    private readonly GroupLifecycle _lifecycle;
    private readonly LaunchOrderStarter _starter;
    private readonly RecoveryPointSelector _points;
    private readonly IRecoveryDecider _decider;
    private readonly GroupRegistry _groups;
    private readonly PolicyStore _store;
    private readonly IEventPublisher _events;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly GroupMonitoring _monitoring;
    private readonly MigrationSettler _settler;
    private readonly RecoveryWindow _window = new();
    private readonly OperationControl _operation = new();
    private readonly ComingUpExits _comingUpExits = new();
    // Guards the state below, which exit reports (on the event stream's thread) read while a
    // transition changes it.
    private readonly object _sync = new();

    private volatile AppliedPolicy _applied;
    private SupervisionState _state = SupervisionState.Stopped;
    private string? _reason;
    private DateTimeOffset _since;
    private Dictionary<string, int> _mainVpids = new(StringComparer.Ordinal);
    // Each time the group runs anew; a fault from an earlier run is stale.
    private int _generation;
    // The us-init of the current run: exits reported by another one are not this run's.
    private int _runningInit;
    private Fault? _lastFault;
    private bool _shuttingDown;
    // Its policy was deleted: it starts, restarts and restores nothing any more.
    private bool _retired;
    // The migration of the group in progress, told of faults while the group is copied ahead.
    private SupervisedMigration? _migration;
    // Where the group runs while this node holds the standby's copy of its policy ("" when unknown).
    private string? _runsOn;

    public GroupSupervisor(
        AppliedPolicy applied, GroupLifecycle lifecycle, LaunchOrderStarter starter, IRecoveryDecider decider,
        RecoveryPointSelector points, GroupRegistry groups, PolicyStore store, GroupMonitoring monitoring, MigrationSettler settler,
        IEventPublisher events, TimeProvider time, ILogger logger)
    {
        _settler = settler;
        _store = store;
        _applied = applied;
        _lifecycle = lifecycle;
        _starter = starter;
        _decider = decider;
        _points = points;
        _groups = groups;
        _monitoring = monitoring;
        _events = events;
        _time = time;
        _logger = logger;
        _since = time.GetUtcNow();
    }

    public string Group => _applied.Policy.Group;

    public SupervisionState State
    {
        get { lock (_sync) { return _state; } }
    }

    /// <summary>This node holds the standby's copy of the group's policy: the group runs on <see cref="RunsOn"/>.</summary>
    public bool IsStandbyCopy => State == SupervisionState.Standby;

    /// <summary>The node the group moved to, while this node holds the standby's copy ("" when unknown).</summary>
    public string? RunsOn
    {
        get { lock (_sync) { return _runsOn; } }
    }

    public SupervisorSnapshot Snapshot()
    {
        lock (_sync)
        {
            return new SupervisorSnapshot(
                _state, _reason, _since, _window.Count(_time.GetUtcNow(), _applied.Policy.Recovery.Window), _applied,
                new Dictionary<string, int>(_mainVpids), _monitoring.Health, _monitoring.NextCheckpointUtc, _lastFault);
        }
    }

    /// <summary>Launches the group in order, waiting for each application's readiness; returns once it runs.</summary>
    /// <exception cref="AgentException">it did not start; it is stopped and marked failed, with the reason.</exception>
    public Task StartAsync(string why, CancellationToken cancellationToken) =>
        _lifecycle.RunExclusiveAsync(async scope =>
        {
            RequireActive();
            if (State == SupervisionState.Running)
            {
                return;
            }
            _window.Clear();
            await StartAsync(scope, why, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>
    /// The agent restarted and found the group running (its us-init outlived the previous
    /// agent): supervision takes up where it was, starting nothing. Its processes register
    /// again by themselves; once they did (or <paramref name="patience"/> passed), each
    /// application's main process is its member that us-init is the parent of, health checks run
    /// again and the checkpoint schedule goes on from the newest checkpoint. An application
    /// with no process left (it ended while no agent watched) is a fault, recovered as any. A group
    /// whose migration was not settled when the last agent stopped stays held frozen for it: the
    /// supervisor stays migrating, watching nothing, until the migration is settled.
    /// </summary>
    public Task AdoptAsync(TimeSpan patience, CancellationToken cancellationToken) =>
        _lifecycle.RunExclusiveAsync(async scope =>
        {
            RequireActive();
            if (_groups.Find(Group) is not { Init: { HasExited: false } init } group)
            {
                return;
            }
            if (_settler.UnsettledTarget(Group) is { } target)
            {
                TakeUpUnsettledMigration(target);
                return;
            }
            await WaitForRegistrationsAsync(group, init.HostPid, patience, cancellationToken).ConfigureAwait(false);
            await WatchWhatRunsAsync(group, "after the agent restart", "it ended while no agent watched the group").ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>
    /// A migration brought the group here and restored it (the takeover's exclusive work, whose
    /// <paramref name="scope"/> this is): this supervisor, new or the standby's copy until now,
    /// supervises it by <paramref name="applied"/> from where it is, as after an agent restart:
    /// each application's main process is its member that us-init is the parent of, health checks
    /// and the checkpoint schedule (from the newest checkpoint) start, and an application with no
    /// process is a fault.
    /// </summary>
    public async Task TakeUpAsync(LifecycleScope scope, AppliedPolicy applied, string source)
    {
        lock (_sync)
        {
            _applied = applied;
            _runsOn = null;
        }
        _lifecycle.Attach(this);
        if (_groups.Find(scope.Group) is { } group)
        {
            await WatchWhatRunsAsync(group, $"after the move from node {source}", "it was not in the checkpoint the group moved with").ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The agent restarted while a migration of the group to <paramref name="target"/> was not settled:
    /// its processes are frozen here, and may run there. No health check, schedule or recovery touches
    /// them (recovering the group here could make it run on both nodes); the settler ends the migration
    /// (<see cref="ResumeAfterMigrationAsync"/>, <see cref="HandOver"/>).
    /// </summary>
    private void TakeUpUnsettledMigration(string target)
    {
        var migration = new SupervisedMigration(this, target, _applied.Parsed.Text, afterRestart: true);
        lock (_sync)
        {
            _migration = migration;
        }
        migration.Unresolved($"the agent restarted before node {target} said whether it runs the group; waiting for it to say");
        _settler.Supervise(Group, migration);
    }

    /// <summary>
    /// The agent started while a migration of the group, stopped here, was not settled: the operator
    /// stopped its frozen copy while the target could not be asked, then the agent restarted. Nothing
    /// starts the group here meanwhile, whatever autostart says (the target may run it); once the
    /// migration is settled, the policy here becomes the standby's copy (the target runs the group), or
    /// supervision goes on as the operator left it: stopped.
    /// </summary>
    /// <returns>whether the group has such a migration</returns>
    public bool FollowUnsettledMigrationWhileStopped()
    {
        if (_settler.UnsettledTarget(Group) is not { } target)
        {
            return false;
        }
        TakeUpUnsettledMigration(target);
        SetState(SupervisionState.Migrating,
            $"stopped here while moving to node {target}, and the agent restarted before node {target} said whether it runs the group: " +
            "nothing starts it here until it does");
        return true;
    }

    /// <summary>The agent found the policy as the standby's copy: the group runs on <paramref name="runsOn"/> ("" when unknown).</summary>
    public void BecomeStandbyCopy(string runsOn)
    {
        _lifecycle.Detach(this);
        lock (_sync)
        {
            _runsOn = runsOn;
            _state = SupervisionState.Standby;
            _reason = StandbyReason(runsOn);
            _since = _time.GetUtcNow();
        }
    }

    private static string StandbyReason(string runsOn) =>
        $"the group runs on {(runsOn.Length > 0 ? "node " + runsOn : "another node")}, which supervises it: this node keeps its policy and its checkpoints as the standby, and starts nothing";

    /// <summary>Supervises what runs of the group: its main processes found among its members, monitoring started, the missing applications faults.</summary>
    private async Task WatchWhatRunsAsync(Group group, string why, string missingBecause)
    {
        var apps = _applied.Policy.Apps.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var mains = group.Members.Snapshot()
            .Where(m => m.Vppid == 1 && apps.Contains(m.App))
            .GroupBy(m => m.App, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Min(m => m.Vpid), StringComparer.Ordinal);
        await EnterRunningAsync(mains, _points.NewestTakenUtc(Group)).ConfigureAwait(false);
        _events.Publish(new SupervisionResumed(Group, mains.Count, apps.Count, why));
        if (_applied.Policy.Apps.FirstOrDefault(a => !mains.ContainsKey(a.Name)) is { } missing)
        {
            int generation;
            lock (_sync)
            {
                generation = _generation;
            }
            _ = HandleFaultAsync(new Fault("exit", missing.Name, null, $"{missing.Name} has no process left: {missingBecause}", null, generation));
        }
    }

    /// <summary>
    /// A migration of the group to <paramref name="target"/> begins (<see cref="IGroupSupervision.BeginMigrationAsync"/>):
    /// only while it runs under supervision, one at a time. The checkpoint schedule pauses (once a
    /// scheduled checkpoint in flight is done); health checks and exits are watched as ever.
    /// </summary>
    public async Task<ISupervisedMigration> BeginMigrationAsync(string target, CancellationToken cancellationToken)
    {
        SupervisedMigration migration;
        lock (_sync)
        {
            if (_state != SupervisionState.Running || _retired)
            {
                var state = _retired ? "no longer supervised" : _state.ToString().ToLowerInvariant();
                throw AgentException.FailedPrecondition(
                    $"migration of group {Group} refused: it is {state} here{(_reason is null ? "" : $" ({_reason})")}; migrate it once it runs again (see hactl group show {Group})");
            }
            if (_migration is not null)
            {
                throw AgentException.FailedPrecondition($"migration of group {Group} refused: it is migrating to node {_migration.Target} already");
            }
            _migration = migration = new SupervisedMigration(this, target, _applied.Parsed.Text);
        }
        try
        {
            migration.PauseSchedule(await _monitoring.PauseCheckpointsAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            migration.Dispose();
            throw;
        }
        return migration;
    }

    /// <summary>The migration's last round begins, the lifecycle lock held: the freeze and the final kill are no faults.</summary>
    /// <exception cref="AgentException">Aborted: a fault came first; it is recovered here.</exception>
    internal async Task HoldForMigrationAsync(SupervisedMigration migration, LifecycleScope scope)
    {
        lock (_sync)
        {
            migration.ThrowIfFaulted();
            if (_state != SupervisionState.Running || !ReferenceEquals(_migration, migration))
            {
                throw AgentException.Aborted(
                    $"migration of group {Group} to node {migration.Target} stopped: the group is {_state.ToString().ToLowerInvariant()} here; it stays here");
            }
            _comingUpExits.Clear();
            _state = SupervisionState.Migrating;
            _reason = $"moving to node {migration.Target} (group {scope.Group} frozen for the last round)";
            _since = _time.GetUtcNow();
        }
        await _monitoring.StopAsync().ConfigureAwait(false);
    }

    /// <summary>The migration failed after its last round began: the group runs on here, watched again (a main process that died meanwhile is a fault).</summary>
    internal async Task ResumeAfterMigrationAsync(SupervisedMigration migration)
    {
        migration.ReleaseSchedule();
        if (migration.AfterRestart)
        {
            // Its main processes were never found: it was taken up frozen.
            lock (_sync)
            {
                EndMigrationLocked(migration);
            }
            if (_groups.Find(Group) is { } group)
            {
                await WatchWhatRunsAsync(group, $"after the agent restart, once its migration to node {migration.Target} was settled",
                    "it ended while no agent watched the group").ConfigureAwait(false);
            }
            return;
        }
        Dictionary<string, int> mains;
        lock (_sync)
        {
            EndMigrationLocked(migration);
            mains = new Dictionary<string, int>(_mainVpids, StringComparer.Ordinal);
        }
        await EnterRunningAsync(mains, _points.NewestTakenUtc(Group)).ConfigureAwait(false);
    }

    /// <summary>
    /// The group runs on <paramref name="target"/>: the policy becomes the standby's copy here (on
    /// disk first), and this supervisor leaves the group's lifecycle, before its processes here are killed.
    /// </summary>
    internal void HandOver(SupervisedMigration migration, string target)
    {
        migration.ReleaseSchedule();
        lock (_sync)
        {
            EndMigrationLocked(migration);
            _mainVpids = new Dictionary<string, int>(StringComparer.Ordinal);
        }
        try
        {
            _store.KeepAsStandbyCopy(Group, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError(
                "Group {Group} moved to node {Node}, but its policy here could not be kept as the standby's copy ({Error}): " +
                "delete it with hactl group delete {Group} before this agent restarts, or it may start the group here too", Group, target, e.Message, Group);
        }
        BecomeStandbyCopy(target);
    }

    /// <summary>
    /// Whether the group runs on the target is unknown: it stays frozen here, still migrating (neither
    /// watched nor recovered), until the target answers (then <see cref="HandOver"/> or
    /// <see cref="ResumeAfterMigrationAsync"/>) or the operator stops or restores it.
    /// </summary>
    internal void LeaveUnresolved(SupervisedMigration migration, string reason) =>
        SetState(SupervisionState.Migrating, $"frozen here, moving to node {migration.Target}: {reason}");

    /// <summary>The migration ended before its last round (it failed, or a fault stopped it): supervision goes on as it was.</summary>
    internal void EndMigration(SupervisedMigration migration)
    {
        migration.ReleaseSchedule();
        bool stillMigrating;
        lock (_sync)
        {
            EndMigrationLocked(migration);
            stillMigrating = _state == SupervisionState.Migrating;
        }
        if (stillMigrating && _groups.Find(Group) is not { IsRunning: true })
        {
            // Settled while stopped here (FollowUnsettledMigrationWhileStopped), and the group does not run on the target.
            SetState(SupervisionState.Stopped, $"stopped by the operator while its migration to node {migration.Target} was not settled; that node does not run it");
        }
    }

    private void EndMigrationLocked(SupervisedMigration migration)
    {
        if (ReferenceEquals(_migration, migration))
        {
            _migration = null;
        }
    }

    /// <summary>Until every process of the group is a member again, or <paramref name="patience"/> passed.</summary>
    private async Task WaitForRegistrationsAsync(Group group, int initHostPid, TimeSpan patience, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(patience);
        try
        {
            while (true)
            {
                var registered = group.Members.Snapshot().Select(m => m.HostPid).ToHashSet();
                var missing = ProcFs.ProcessesInNamespaceOf(initHostPid).Count(p => !registered.Contains(p));
                if (missing == 0)
                {
                    return;
                }
                // A member's HELLO changes the table; a process that ends does not, hence the poll.
                await Task.WhenAny(
                    group.Members.WaitUntilAsync(_ => false, deadline.Token),
                    Task.Delay(RegistrationPoll, _time, deadline.Token)).ConfigureAwait(false);
                deadline.Token.ThrowIfCancellationRequested();
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("Group {Group}: not every process registered again within {Patience}; supervising those that did", Group, patience);
        }
    }

    /// <summary>Stops the group (interrupting a start or recovery); returns how many members it had.</summary>
    public async Task<int> StopAsync(string why, CancellationToken cancellationToken)
    {
        using var interruption = Interrupt("the group is being stopped");
        return await _lifecycle.RunExclusiveAsync(async scope =>
        {
            try
            {
                return await StopAsync(scope, why).ConfigureAwait(false);
            }
            finally
            {
                interruption.Dispose();
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the group, then starts it fresh, in launch order.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken)
    {
        using var interruption = Interrupt("the group is being restarted");
        await _lifecycle.RunExclusiveAsync(async scope =>
        {
            try
            {
                RequireActive();
                await StopAsync(scope, "restart requested").ConfigureAwait(false);
            }
            finally
            {
                interruption.Dispose();
            }
            _window.Clear();
            await StartAsync(scope, "restart requested", cancellationToken).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>hactl restore of a supervised group: restored, resumed app by app as each one before is ready, and watched again.</summary>
    /// <exception cref="AgentException">it did not come back; it is stopped and marked failed, with the reason.</exception>
    public Task<RestoreOutcome> RestoreAsync(string? checkpointId, bool force, CancellationToken cancellationToken) =>
        _lifecycle.RunExclusiveAsync(async scope =>
        {
            RequireActive();
            scope.RequireStoppedUnless(force, checkpointId);
            await _monitoring.StopAsync().ConfigureAwait(false);
            SetState(SupervisionState.Recovering, "restore requested");
            using var operation = BeginOperation(cancellationToken);
            try
            {
                var running = await _starter.RestoreAsync(scope, _applied.Policy, checkpointId, Track, operation.Token).ConfigureAwait(false);
                await EnterRunningAsync(running.MainVpids).ConfigureAwait(false);
                return running.Restore!;
            }
            catch (Exception e) when (IsTransitionFailure(e))
            {
                var why = await DescribeAsync(e).ConfigureAwait(false);
                await scope.StopAsync().ConfigureAwait(false);
                Fail($"restore requested by the operator failed: {why}");
                if (e is AgentException || cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                if (_operation.StopRequested)
                {
                    throw AgentException.Aborted($"restore of group {Group} interrupted: {why}", e);
                }
                throw AgentException.FailedPrecondition(
                    $"restore of group {Group} failed: {why}; the group is stopped and marked failed (hactl group start {Group} starts it afresh)", e);
            }
        }, cancellationToken);

    /// <summary>
    /// hactl group delete: the group must be stopped (or failed) and have no process left; then
    /// <paramref name="deleteStored"/> removes its stored policy, and from then on this supervisor
    /// starts, restarts and restores nothing.
    /// </summary>
    /// <exception cref="AgentException">FailedPrecondition: the group runs; nothing was changed.</exception>
    public Task RetireAsync(Action deleteStored, CancellationToken cancellationToken) =>
        _lifecycle.RunExclusiveAsync(_ =>
        {
            RequireNotRetired();
            var state = State;
            if (state is not (SupervisionState.Stopped or SupervisionState.Failed or SupervisionState.Standby))
            {
                throw AgentException.FailedPrecondition(
                    $"group {Group} is {state.ToString().ToLowerInvariant()}; stop it first with: hactl group stop {Group}");
            }
            if (_groups.Find(Group) is { IsRunning: true } group)
            {
                throw AgentException.FailedPrecondition(
                    $"group {Group} still has {group.Members.Count} process(es) outside its policy; stop them first with: hactl stop {Group}");
            }
            deleteStored();
            lock (_sync)
            {
                _retired = true;
            }
            _lifecycle.Detach(this);
            return Task.CompletedTask;
        }, cancellationToken);

    /// <summary>A new policy: the checkpoint schedule, health checks and recovery policy change at once.</summary>
    public Task ApplyAsync(AppliedPolicy applied)
    {
        var previous = _applied.Policy;
        _applied = applied;
        return _monitoring.ApplyAsync(healthChanged: HealthChecks(previous) != HealthChecks(applied.Policy));
    }

    /// <summary>The agent is shutting down: stop watching, so that its killing the groups is no fault.</summary>
    public async Task ShutdownAsync()
    {
        lock (_sync)
        {
            _shuttingDown = true;
        }
        _operation.RequestStop("the agent is shutting down");
        await _monitoring.StopAsync().ConfigureAwait(false);
    }

    /// <summary>us-init reaped a process of the group.</summary>
    public void OnExited(MemberExited exit)
    {
        Fault? fault;
        lock (_sync)
        {
            if (_shuttingDown)
            {
                return;
            }
            var mainApp = _mainVpids.FirstOrDefault(kv => kv.Value == exit.Vpid).Key;
            if (_state == SupervisionState.Migrating)
            {
                // Frozen for a migration's last round, then killed once it runs on the target: no
                // fault. Should the migration fail, a main process that died meanwhile is one then.
                _comingUpExits.Record(exit);
                return;
            }
            if (_state is SupervisionState.Starting or SupervisionState.Recovering)
            {
                _comingUpExits.Record(exit);
                // An application that was already launched died while the others come up.
                if (mainApp is not null && exit.InitHostPid == CurrentInitHostPid())
                {
                    _operation.Abort($"{mainApp} (pid {exit.Vpid}) {exit.How} while the group was coming up");
                }
                return;
            }
            if (_state != SupervisionState.Running || exit.InitHostPid != _runningInit)
            {
                return;
            }
            fault = FaultClassifier.Classify(exit, mainApp, _generation);
            if (fault is not null)
            {
                _migration?.Fault(fault.Reason);
            }
        }
        if (fault is not null)
        {
            _ = HandleFaultAsync(fault);
        }
    }

    /// <summary>us-init died by itself: all of the group's processes are gone.</summary>
    public void OnInitDied(GroupInitDied died)
    {
        Fault fault;
        lock (_sync)
        {
            if (_shuttingDown)
            {
                return;
            }
            if (_state is SupervisionState.Starting or SupervisionState.Recovering)
            {
                _operation.Abort($"us-init died while the group was coming up ({died.How})");
                return;
            }
            if (_state != SupervisionState.Running || died.InitHostPid != _runningInit)
            {
                return;
            }
            fault = new Fault("init", null, null, $"us-init of the group died ({died.How})", null, _generation);
            _migration?.Fault(fault.Reason);
        }
        _ = HandleFaultAsync(fault);
    }

    private void OnUnhealthy(HealthVerdict verdict, int generation)
    {
        var reason = $"{verdict.Target.App} (pid {verdict.Target.Vpid}) failed its health check {verdict.Check.Probe.Describe()} " +
                     $"{verdict.Check.FailureThreshold} times in a row (last: {verdict.LastDetail})";
        lock (_sync)
        {
            if (_state != SupervisionState.Running || generation != _generation)
            {
                return;
            }
            _migration?.Fault(reason);
        }
        // A checkpoint in flight cannot finish with a hung member: it is aborted now, and the
        // group thawed, rather than when its phase times out, so that recovery starts at once.
        _lifecycle.AbortCheckpoints($"a hang was found, the group is recovered: {reason}");
        _ = HandleFaultAsync(new Fault("hang", verdict.Target.App, verdict.Target.Vpid, reason, verdict.AnsweredUtc, generation));
    }

    private async Task HandleFaultAsync(Fault fault)
    {
        try
        {
            await _lifecycle.RunExclusiveAsync(async scope =>
            {
                lock (_sync)
                {
                    // Stale: the group was stopped, restarted or recovered since.
                    if (_state != SupervisionState.Running || fault.Generation != _generation || _shuttingDown)
                    {
                        return;
                    }
                    _lastFault = fault;
                }
                _events.Publish(new FaultDetected(Group, fault.Kind, fault.App, fault.Vpid, fault.Reason));
                await RecoverAsync(scope, fault).ConfigureAwait(false);
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Recovery of group {Group} failed unexpectedly", Group);
            Fail($"recovery failed unexpectedly: {e.Message}");
        }
    }

    /// <summary>
    /// Restores the checkpoint decided on or, if it cannot be restored (corrupt, its base gone),
    /// the newest older one that fits the fault, within the same attempt: a damaged image is no
    /// reason to spend the policy's attempts, or to give up while a good checkpoint exists. Each
    /// fallback is a recovery.fallback event.
    /// </summary>
    private async Task<RunningGroup> RestoreUsableAsync(
        LifecycleScope scope, GroupPolicy policy, Fault fault, int attempt, string checkpointId, CancellationToken cancellationToken)
    {
        var unusable = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            try
            {
                return await _starter.RestoreAsync(scope, policy, checkpointId, Track, cancellationToken).ConfigureAwait(false);
            }
            catch (AgentException e) when (Unrestorable(e) is { } why && _points.Select(Group, fault, unusable.Append(checkpointId).ToHashSet()) is { } older)
            {
                unusable.Add(checkpointId);
                _events.Publish(new RecoveryFallback(Group, attempt, checkpointId, why, older));
                checkpointId = older;
            }
        }
    }

    /// <summary>Why a restore refused its checkpoint itself, or null when it failed for another reason.</summary>
    private static string? Unrestorable(AgentException e) =>
        e.InnerException is ImageFormatException or CheckpointMergeException ? AgentException.OneLine(e.InnerException.Message) : null;

    /// <summary>Recovers the whole group, attempt after attempt, until it runs or the decider gives up.</summary>
    private async Task RecoverAsync(LifecycleScope scope, Fault fault)
    {
        await _monitoring.StopAsync().ConfigureAwait(false);
        SetState(SupervisionState.Recovering, fault.Reason);
        var lastFailure = fault.Reason;
        while (true)
        {
            var policy = _applied.Policy;
            var decision = await _decider.DecideAsync(new RecoveryRequest(policy, fault, lastFailure, _window), CancellationToken.None).ConfigureAwait(false);
            int attempt;
            switch (decision)
            {
                case RecoveryDecision.GiveUp giveUp:
                    await scope.StopAsync().ConfigureAwait(false);
                    Fail(giveUp.Reason);
                    return;
                case RecoveryDecision.FailOver failOver:
                    await scope.StopAsync().ConfigureAwait(false);
                    Fail($"failed over to the standby: {failOver.Reason}");
                    return;
                case RecoveryDecision.RestoreCheckpoint restore:
                    attempt = restore.Attempt;
                    break;
                case RecoveryDecision.RestartFresh restart:
                    attempt = restart.Attempt;
                    break;
                default:
                    throw new InvalidOperationException($"unknown recovery decision {decision}");
            }

            var action = policy.Recovery.Action.ToToken();
            _events.Publish(new RecoveryStarted(Group, attempt, policy.Recovery.MaxAttempts, action, lastFailure));
            using var operation = BeginOperation(CancellationToken.None);
            var duration = Stopwatch.StartNew();
            try
            {
                var running = decision is RecoveryDecision.RestoreCheckpoint { CheckpointId: var checkpointId }
                    ? await RestoreUsableAsync(scope, policy, fault, attempt, checkpointId, operation.Token).ConfigureAwait(false)
                    : await _starter.RestartAsync(scope, policy, Track, operation.Token).ConfigureAwait(false);
                await EnterRunningAsync(running.MainVpids).ConfigureAwait(false);
                _events.Publish(new RecoveryFinished(Group, attempt, action, running.CheckpointId, duration.Elapsed.TotalMilliseconds));
                return;
            }
            catch (Exception e) when (IsTransitionFailure(e))
            {
                if (_operation.StopRequested)
                {
                    return;
                }
                var why = await DescribeAsync(e).ConfigureAwait(false);
                lastFailure = $"recovery {attempt} failed: {why}";
                _events.Publish(new RecoveryFailed(Group, attempt, why));
            }
        }
    }

    private async Task StartAsync(LifecycleScope scope, string why, CancellationToken cancellationToken)
    {
        var policy = _applied.Policy;
        SetState(SupervisionState.Starting, null);
        _events.Publish(new GroupStarting(Group, why));
        using var operation = BeginOperation(cancellationToken);
        try
        {
            // Processes launched by hand into the group are not part of a fresh start.
            if (_groups.Find(Group) is { IsRunning: true })
            {
                await scope.StopAsync().ConfigureAwait(false);
            }
            var running = await _starter.LaunchAsync(scope, policy, Track, operation.Token).ConfigureAwait(false);
            await EnterRunningAsync(running.MainVpids).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransitionFailure(e))
        {
            var reason = await DescribeAsync(e).ConfigureAwait(false);
            await scope.StopAsync().ConfigureAwait(false);
            if (_operation.StopRequested)
            {
                throw AgentException.Aborted($"start of group {Group} interrupted: {reason}");
            }
            _events.Publish(new GroupStartFailed(Group, reason));
            Fail($"it did not start: {reason}");
            cancellationToken.ThrowIfCancellationRequested();
            throw AgentException.FailedPrecondition($"group {Group} did not start: {reason}; fix the cause and run: hactl group start {Group}");
        }
    }

    private async Task<int> StopAsync(LifecycleScope scope, string why)
    {
        if (IsStandbyCopy)
        {
            // Whatever was restored here by hand; the standby's copy stays what it is.
            return await scope.StopAsync().ConfigureAwait(false);
        }
        await _monitoring.StopAsync().ConfigureAwait(false);
        var wasStopped = State == SupervisionState.Stopped;
        SetState(SupervisionState.Stopping, why);
        var killed = await scope.StopAsync().ConfigureAwait(false);
        SetState(SupervisionState.Stopped, why);
        if (!wasStopped || killed > 0)
        {
            _events.Publish(new GroupStopped(Group, why));
        }
        return killed;
    }

    /// <summary>
    /// Interrupts the start or recovery in progress, and any that begins, before waiting for the
    /// group's lifecycle; disposing (once the stop is done, or when it never came) ends that.
    /// </summary>
    private Interruption Interrupt(string reason)
    {
        _operation.RequestStop(reason);
        return new Interruption(_operation);
    }

    private async Task EnterRunningAsync(IReadOnlyDictionary<string, int> vpids, DateTimeOffset? lastCheckpoint = null)
    {
        Fault? gone;
        int generation;
        lock (_sync)
        {
            _mainVpids = new Dictionary<string, int>(vpids, StringComparer.Ordinal);
            generation = ++_generation;
            _runningInit = CurrentInitHostPid();
            _lastFault = null;
            _state = SupervisionState.Running;
            _reason = null;
            _since = _time.GetUtcNow();
            // An exit seen while coming up (say, a restored process that crashed at once) was
            // no fault then; it is one now.
            gone = _comingUpExits.Of(_runningInit)
                .Where(x => _mainVpids.ContainsValue(x.Vpid))
                .Select(x => new Fault(x.Signal != 0 ? "crash" : "exit", x.App, x.Vpid,
                    $"{x.App} (pid {x.Vpid}) {x.How} while the group was coming up", null, generation))
                .FirstOrDefault();
        }
        await _monitoring.StartAsync(() => _applied.Policy, vpids, verdict => OnUnhealthy(verdict, generation), lastCheckpoint).ConfigureAwait(false);
        if (gone is not null)
        {
            _ = HandleFaultAsync(gone);
        }
    }

    /// <summary>Records each launched main process at once, so that its death during the start is noticed.</summary>
    private void Track(string app, int vpid)
    {
        lock (_sync)
        {
            _mainVpids = new Dictionary<string, int>(_mainVpids, StringComparer.Ordinal) { [app] = vpid };
        }
    }

    private CancellationTokenSource BeginOperation(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            _mainVpids = new Dictionary<string, int>(StringComparer.Ordinal);
        }
        _comingUpExits.Clear();
        return _operation.Begin(cancellationToken);
    }

    /// <summary>
    /// Why a start or recovery failed. A process of the group that died meanwhile says it best;
    /// when an application was found gone, us-init's report of its exit is given a moment to arrive.
    /// </summary>
    private async Task<string> DescribeAsync(Exception e)
    {
        if (e is NotReadyException { Exited: true })
        {
            await _comingUpExits.WaitForOneAsync(ExitReportPatience, _time).ConfigureAwait(false);
        }
        if (_comingUpExits.Of(CurrentInitHostPid()).FirstOrDefault(x => x.App is not null) is { } exit)
        {
            return $"{exit.App} (pid {exit.Vpid}) {exit.How} while the group was coming up";
        }
        return e is OperationCanceledException ? _operation.AbortReason ?? "cancelled" : e.Message;
    }

    /// <summary>Neither retired nor the standby's copy: a policy that starts, restarts and restores the group here.</summary>
    private void RequireActive()
    {
        RequireNotRetired();
        lock (_sync)
        {
            if (_state == SupervisionState.Standby)
            {
                var where = _runsOn is { Length: > 0 } node ? $"node {node}" : "another node";
                throw AgentException.FailedPrecondition(
                    $"group {Group} runs on {where}, which supervises it; this node holds its policy as the standby's copy and starts nothing by it: " +
                    $"to run it here, move it with 'hactl migrate {Group} --to NODE' on {where}");
            }
        }
    }

    private void RequireNotRetired()
    {
        lock (_sync)
        {
            if (_retired)
            {
                throw AgentException.NotFound($"group {Group} has no policy any more (it was deleted); give it one with: hactl group apply -f POLICY.yaml");
            }
        }
    }

    private static bool IsTransitionFailure(Exception e) => e is NotReadyException or AgentException or OperationCanceledException;

    private static string HealthChecks(GroupPolicy policy) =>
        string.Join("\n", policy.Apps.Select(a => $"{a.Name}: {PolicyText.Describe(a.Health)}"));

    private int CurrentInitHostPid() => _groups.Find(Group)?.Init is { HasExited: false } init ? init.HostPid : 0;

    private void Fail(string reason)
    {
        SetState(SupervisionState.Failed, reason);
        _events.Publish(new GroupFailed(Group, reason));
    }

    private void SetState(SupervisionState state, string? reason)
    {
        lock (_sync)
        {
            _state = state;
            _reason = reason;
            _since = _time.GetUtcNow();
        }
    }

    /// <summary>Ends an interruption of the supervisor's operations, once.</summary>
    private sealed class Interruption(OperationControl operation) : IDisposable
    {
        private int _ended;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                operation.EndStop();
            }
        }
    }
}
