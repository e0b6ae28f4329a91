using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Restore;

namespace Understudy.GuestAgent.Operations.Lifecycle;

/// <summary>
/// The lifecycle of one group: launching into it, stopping it, restoring it and checkpointing it
/// (later, migrating it) go through here, for every group, whoever asks (the API, the supervisor).
/// <para>
/// What starts or stops the group's us-init takes the group's lifecycle lock, which stays private:
/// whole operations are offered, and a sequence of them that must not be interleaved with others (a
/// supervised start in launch order, a recovery, stop-then-start) runs in
/// <see cref="RunExclusiveAsync{T}"/>. A checkpoint does not take it: the registration lock orders a
/// checkpoint against a restore, and a stop ends a running checkpoint by ending its members.
/// </para>
/// <para>
/// The operator's stop and restore of a group with a supervisor are handed to the supervisor
/// (<see cref="IGroupSupervision"/>), which carries them out through this lifecycle.
/// </para>
/// </summary>
internal sealed class GroupLifecycle
{
    // Guards which us-init the group has: held while one is started or stopped (launching the first
    // application, stop, restore) and through exclusive work, so that a group never has two and no
    // other operation on its processes interleaves with a sequence that must not be split.
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly GroupRegistry _groups;
    private readonly GroupLocator _locator;
    private readonly GroupLauncher _launcher;
    private readonly RestoreCoordinator _restores;
    private readonly GroupCheckpointer _checkpoints;
    // Each checkpoint in flight, with why it was aborted once it is (AbortCheckpoints).
    private readonly Dictionary<CancellationTokenSource, string?> _checkpointsInFlight = [];
    // One checkpoint at a time; another one asked for meanwhile (by hand while a scheduled one
    // runs) waits for it, then is taken.
    private readonly SemaphoreSlim _checkpointTurn = new(1, 1);
    // Why the group is held frozen on purpose (a migration whose outcome is not known yet), or null:
    // a checkpoint would end with RESUME and thaw it.
    private volatile string? _heldFrozenBecause;
    private volatile IGroupSupervision? _supervision;

    public GroupLifecycle(
        string name, GroupRegistry groups, GroupLocator locator, GroupLauncher launcher, RestoreCoordinator restores,
        GroupCheckpointer checkpoints)
    {
        Name = name;
        _groups = groups;
        _locator = locator;
        _launcher = launcher;
        _restores = restores;
        _checkpoints = checkpoints;
    }

    public string Name { get; }

    /// <summary>The group has a supervisor from now on: the operator's stop and restore go through it.</summary>
    public void Attach(IGroupSupervision supervision) => _supervision = supervision;

    /// <summary>A supervisor watches the group (its policy is in force here).</summary>
    public bool IsSupervised => _supervision is not null;

    /// <summary>
    /// A migration of the group begins: its supervisor, if it has one, learns of it (and may refuse);
    /// null for a group without a policy.
    /// </summary>
    public async Task<ISupervisedMigration?> BeginMigrationAsync(string target, CancellationToken cancellationToken) =>
        _supervision is { } supervision ? await supervision.BeginMigrationAsync(target, cancellationToken).ConfigureAwait(false) : null;

    /// <summary>The group's supervisor retired (its policy was deleted, or the group moved to another node).</summary>
    public void Detach(IGroupSupervision supervision) =>
        Interlocked.CompareExchange(ref _supervision, null, supervision);

    /// <summary>
    /// Launches an application into the group (created if new) and returns once it said HELLO. The
    /// lock is held only while the group's us-init is started: launches into a running group
    /// proceed side by side, and a stop is not held up by a launch waiting for its HELLO.
    /// </summary>
    public async Task<LaunchedMember> LaunchAsync(LaunchSpec spec, CancellationToken cancellationToken)
    {
        var group = _groups.GetOrCreate(Name);
        var init = await RunExclusiveAsync(_ => _launcher.EnsureInitAsync(group, cancellationToken), cancellationToken).ConfigureAwait(false);
        return await _launcher.LaunchAsync(group, init, spec, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the group: every process of it is killed. Returns how many members it had.</summary>
    /// <param name="why">for a supervised group's event (group.stopped)</param>
    public Task<int> StopAsync(string why, CancellationToken cancellationToken)
    {
        if (_supervision is { } supervision)
        {
            return supervision.StopAsync(why, cancellationToken);
        }
        if (_groups.Find(Name) is null)
        {
            return _locator.Exists(Name)
                ? Task.FromResult(0)
                : throw AgentException.NotFound($"unknown group {Name}; see hactl status");
        }
        return RunExclusiveAsync(scope => scope.StopAsync(), cancellationToken);
    }

    /// <summary>
    /// Recreates the group's processes from a checkpoint (see <see cref="RestoreCoordinator"/>):
    /// all resumed together, or for a supervised group app by app in launch order.
    /// </summary>
    /// <param name="checkpointId">null or empty: the newest</param>
    /// <param name="force">restore even though the group runs; otherwise that is refused</param>
    public Task<RestoreOutcome> RestoreAsync(string? checkpointId, bool force, CancellationToken cancellationToken) =>
        _supervision is { } supervision
            ? supervision.RestoreAsync(checkpointId, force, cancellationToken)
            : RunExclusiveAsync(scope =>
            {
                scope.RequireStoppedUnless(force, checkpointId);
                return scope.RestoreAsync(checkpointId, ResumeTogether.Instance, cancellationToken);
            }, cancellationToken);

    /// <summary>
    /// A coordinated checkpoint of the running group (see <see cref="GroupCheckpointer"/>); it
    /// ends early, aborted, when <see cref="AbortCheckpoints"/> is called meanwhile.
    /// </summary>
    /// <param name="trigger">manual or scheduled, for the event</param>
    /// <param name="incrementalWherePossible">the periodic full checkpoint waits (a migration's rounds)</param>
    /// <exception cref="AgentException">FailedPrecondition: the group is held frozen (<see cref="HoldFrozen"/>).</exception>
    public async Task<CheckpointOutcome> CheckpointAsync(
        bool full, string trigger, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken,
        bool incrementalWherePossible = false)
    {
        await _checkpointTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RequireNotHeldFrozen();
            return await CheckpointInTurnAsync(full, trigger, progress, cancellationToken, incrementalWherePossible).ConfigureAwait(false);
        }
        finally
        {
            _checkpointTurn.Release();
        }
    }

    /// <summary>
    /// Keeps checkpoints off the group until disposed: it is frozen on purpose, and a checkpoint's
    /// RESUME would let it run (a migration whose target may run it already).
    /// </summary>
    public IDisposable HoldFrozen(string because)
    {
        _heldFrozenBecause = because;
        return new GateLease(() => _heldFrozenBecause = null);
    }

    /// <summary>Why the group is held frozen (<see cref="HoldFrozen"/>), or null.</summary>
    public string? HeldFrozenBecause => _heldFrozenBecause;

    private void RequireNotHeldFrozen()
    {
        if (_heldFrozenBecause is { } why)
        {
            throw AgentException.FailedPrecondition($"group {Name} cannot be checkpointed now: it is held frozen here ({why})");
        }
    }

    private async Task<CheckpointOutcome> CheckpointInTurnAsync(
        bool full, string trigger, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken, bool incrementalWherePossible)
    {
        using var inFlight = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_checkpointsInFlight)
        {
            _checkpointsInFlight.Add(inFlight, null);
        }
        try
        {
            return await _checkpoints.RunAsync(Name, full, trigger, progress, () => AbortReason(inFlight), inFlight.Token, incrementalWherePossible)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && AbortReason(inFlight) is { } why)
        {
            throw AgentException.Aborted($"checkpoint of group {Name} aborted: {why}; the previous checkpoint is still valid");
        }
        finally
        {
            lock (_checkpointsInFlight)
            {
                _checkpointsInFlight.Remove(inFlight);
            }
        }
    }

    /// <summary>
    /// Aborts the group's checkpoints in flight at once: each sends ABORT, so the group runs
    /// again, and fails with <paramref name="reason"/>. The supervisor calls it when it found the
    /// group hung, so that recovery does not wait for a checkpoint that cannot finish.
    /// </summary>
    public void AbortCheckpoints(string reason)
    {
        List<CancellationTokenSource> running;
        lock (_checkpointsInFlight)
        {
            running = [.. _checkpointsInFlight.Keys];
            foreach (var checkpoint in running)
            {
                _checkpointsInFlight[checkpoint] = reason;
            }
        }
        foreach (var checkpoint in running)
        {
            try
            {
                checkpoint.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It ended meanwhile.
            }
        }
    }

    private string? AbortReason(CancellationTokenSource checkpoint)
    {
        lock (_checkpointsInFlight)
        {
            return _checkpointsInFlight.GetValueOrDefault(checkpoint);
        }
    }

    /// <summary>Runs <paramref name="work"/> with the group's lifecycle lock held, giving it the group's operations.</summary>
    public async Task<T> RunExclusiveAsync<T>(Func<LifecycleScope, Task<T>> work, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        var scope = new LifecycleScope(this);
        try
        {
            return await work(scope).ConfigureAwait(false);
        }
        finally
        {
            scope.End();
            _lock.Release();
        }
    }

    /// <inheritdoc cref="RunExclusiveAsync{T}"/>
    public Task RunExclusiveAsync(Func<LifecycleScope, Task> work, CancellationToken cancellationToken) =>
        RunExclusiveAsync(async scope =>
        {
            await work(scope).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    internal async Task<LaunchedMember> LaunchHeldAsync(LaunchSpec spec, CancellationToken cancellationToken)
    {
        var group = _groups.GetOrCreate(Name);
        var init = await _launcher.EnsureInitAsync(group, cancellationToken).ConfigureAwait(false);
        return await _launcher.LaunchAsync(group, init, spec, cancellationToken).ConfigureAwait(false);
    }

    internal void RequireStoppedUnless(bool force, string? checkpointId)
    {
        // Its live processes are what a restore would kill. After a crash there are none, although the
        // agent may not have heard of the deaths yet: a member killed a moment ago is still registered.
        if (force || _groups.Find(Name) is not { } group)
        {
            return;
        }
        var alive = group.Members.Snapshot().Count(member => ProcFs.IsRunning(member.HostPid));
        if (alive == 0)
        {
            return;
        }
        var which = string.IsNullOrEmpty(checkpointId) ? "its newest checkpoint" : $"checkpoint {checkpointId}";
        var processes = alive == 1 ? "1 process" : $"{alive} processes";
        throw AgentException.FailedPrecondition(
            $"group {Name} is running ({processes}): a restore would kill them and bring back {which}; " +
            $"stop it first with 'hactl stop {Name}', or pass --force");
    }

    internal Task<int> StopHeldAsync() =>
        _groups.Find(Name) is { } group ? _launcher.StopAsync(group) : Task.FromResult(0);

    internal async Task<FrozenGroup> CheckpointAndHoldHeldAsync(IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        await _checkpointTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            RequireNotHeldFrozen();
            return await _checkpoints.RunAndHoldAsync(Name, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _checkpointTurn.Release();
        }
    }

    internal Task<RestoreOutcome> RestoreHeldAsync(string? checkpointId, IResumeOrder resume, CancellationToken cancellationToken) =>
        _restores.RestoreAsync(Name, checkpointId, resume, cancellationToken);
}
