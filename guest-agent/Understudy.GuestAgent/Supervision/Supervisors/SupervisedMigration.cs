using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Operations.Lifecycle;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// A supervised group's migration as its supervisor takes part in it (<see cref="ISupervisedMigration"/>):
/// made by <see cref="GroupSupervisor.BeginMigrationAsync"/>, which pauses the checkpoint schedule (a
/// scheduled checkpoint would collide with a round), cancelled by a fault the supervisor finds
/// during the copy-ahead rounds, and ended, once, by the outcome or by disposal.
/// </summary>
internal sealed class SupervisedMigration : ISupervisedMigration
{
    private readonly GroupSupervisor _supervisor;
    private readonly CancellationTokenSource _faulted = new();
    private IDisposable? _schedulePause;
    private volatile string? _faultReason;
    private int _ended;
    // Left unresolved: the settler, not disposal, ends it.
    private int _unsettled;

    /// <param name="afterRestart">taken up by a new agent, the group frozen for it since before the restart</param>
    public SupervisedMigration(GroupSupervisor supervisor, string target, string policyText, bool afterRestart = false)
    {
        _supervisor = supervisor;
        Target = target;
        PolicyText = policyText;
        AfterRestart = afterRestart;
    }

    /// <summary>Taken up by a new agent: the supervisor never watched the group before it froze.</summary>
    public bool AfterRestart { get; }

    public string Target { get; }

    public string PolicyText { get; }

    public CancellationToken Faulted => _faulted.Token;

    public string? FaultReason => _faultReason;

    /// <summary>The supervisor found a fault or hang while the group was still copied ahead: the migration stops.</summary>
    public void Fault(string reason)
    {
        if (Volatile.Read(ref _ended) != 0)
        {
            return;
        }
        _faultReason ??= reason;
        try
        {
            _faulted.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Ended meanwhile.
        }
    }

    public Task HoldAsync(LifecycleScope scope) => _supervisor.HoldForMigrationAsync(this, scope);

    public async Task ResumeAsync()
    {
        if (End())
        {
            await _supervisor.ResumeAfterMigrationAsync(this).ConfigureAwait(false);
        }
    }

    public void HandedOver(string target)
    {
        if (End())
        {
            _supervisor.HandOver(this, target);
        }
    }

    public void Unresolved(string reason)
    {
        if (Volatile.Read(ref _ended) == 0 && Interlocked.Exchange(ref _unsettled, 1) == 0)
        {
            _supervisor.LeaveUnresolved(this, reason);
        }
    }

    public void Release()
    {
        if (End())
        {
            _supervisor.EndMigration(this);
        }
    }

    public void Dispose()
    {
        if (Volatile.Read(ref _unsettled) == 0)
        {
            Release();
        }
        _faulted.Dispose();
    }

    /// <summary>Holds the group's scheduled checkpoints back until the migration ends (at once if it ended).</summary>
    public void PauseSchedule(IDisposable pause)
    {
        Interlocked.Exchange(ref _schedulePause, pause)?.Dispose();
        if (Volatile.Read(ref _ended) != 0)
        {
            ReleaseSchedule();
        }
    }

    /// <summary>The scheduled checkpoints may go on (or, handed over, are never taken here again).</summary>
    public void ReleaseSchedule() => Interlocked.Exchange(ref _schedulePause, null)?.Dispose();

    /// <summary>Whether this is the first end of the migration: a fault no longer stops it.</summary>
    private bool End() => Interlocked.Exchange(ref _ended, 1) == 0;

    /// <exception cref="AgentException">Aborted: a fault came first.</exception>
    public void ThrowIfFaulted()
    {
        if (_faultReason is { } reason)
        {
            throw AgentException.Aborted($"migration of group {_supervisor.Group} to node {Target} stopped: the group had a fault ({reason}); its supervisor recovers it here");
        }
    }
}
