using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Groups;

internal enum GateMode
{
    /// <summary>Registrations proceed.</summary>
    Open,
    /// <summary>A checkpoint waits for the registrations in flight to finish; new ones wait.</summary>
    Closing,
    /// <summary>A checkpoint runs; every registration waits.</summary>
    Held,
    /// <summary>A restore runs; only restored processes register.</summary>
    Restoring,
    /// <summary>
    /// A restore resumes its processes (app by app, possibly waiting for readiness in between):
    /// registrations proceed, since a resumed process may fork or exec, but checkpoints wait.
    /// </summary>
    Resuming,
}

/// <summary>What an admitted HELLO holds until its WELCOME is out.</summary>
/// <param name="Registration">counts the HELLO itself as in flight.</param>
/// <param name="Claimed">the fork, exec or spawn registration this HELLO completes, if any.</param>
internal sealed record HelloAdmission(PendingRegistration Registration, PendingRegistration? Claimed);

/// <summary>
/// A group's registration lock (docs/architecture.md, "A coordinated checkpoint", step 1). A
/// checkpoint closes it: registrations already in flight finish first (a granted fork's child
/// may still say HELLO), new ones wait until the checkpoint is over.
/// </summary>
internal sealed class RegistrationGate
{
    private readonly object _sync = new();
    private readonly List<PendingRegistration> _pending = [];
    private readonly string _group;
    private readonly TimeSpan _grace;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<PendingRegistration> _expired;
    private GateMode _mode = GateMode.Open;
    private int _waiting;
    private TaskCompletionSource _changed = NewSignal();

    /// <param name="expired">called when a fork, exec or spawn registration was given up.</param>
    public RegistrationGate(string group, TimeSpan grace, TimeProvider time, ILogger logger, Action<PendingRegistration> expired)
    {
        _group = group;
        _grace = grace;
        _time = time;
        _logger = logger;
        _expired = expired;
    }

    public GateMode Mode
    {
        get { lock (_sync) { return _mode; } }
    }

    /// <summary>Registrations in flight.</summary>
    public int PendingCount
    {
        get { lock (_sync) { return _pending.Count; } }
    }

    /// <summary>HELLOs and *_BEGINs (and launches) waiting for the lock.</summary>
    public int WaitingCount
    {
        get { lock (_sync) { return _waiting; } }
    }

    /// <summary>
    /// FORK_BEGIN, EXEC_BEGIN, SPAWN_BEGIN or a launch: waits while a checkpoint or restore holds
    /// the lock, then counts a registration in flight.
    /// </summary>
    public Task<PendingRegistration> BeginAsync(RegistrationKind kind, int vpid, CancellationToken cancellationToken) =>
        WaitUntilAsync(() => AdmitsRegistrations ? Add(kind, vpid) : null, countAsWaiting: true, cancellationToken);

    /// <summary>
    /// Decides when a HELLO may be answered: at once if it completes a registration in flight
    /// (the checkpoint is waiting for exactly that), if the lock is open, or if it comes from a
    /// restored process during a restore; otherwise once the checkpoint is over.
    /// </summary>
    public Task<HelloAdmission> AdmitHelloAsync(HelloMessage hello, CancellationToken cancellationToken) =>
        WaitUntilAsync(() =>
        {
            var (matched, claim) = Match(hello);
            var admit = matched
                || AdmitsRegistrations
                || (_mode == GateMode.Restoring && hello.Origin == RegistrationOrigin.Restore);
            if (!admit)
            {
                return null;
            }
            if (claim is not null)
            {
                claim.Claimed = true;
            }
            return new HelloAdmission(Add(RegistrationKind.Hello, hello.Vpid), claim);
        }, countAsWaiting: true, cancellationToken);

    /// <summary>The registration completed or failed; idempotent.</summary>
    public void Finish(PendingRegistration? registration)
    {
        if (registration is null)
        {
            return;
        }
        lock (_sync)
        {
            if (_pending.Remove(registration))
            {
                Signal();
            }
        }
    }

    /// <summary>FORK_END or SPAWN_END named the child, so its HELLO can be matched exactly.</summary>
    public void ReportChild(RegistrationKind kind, int parentVpid, int childVpid)
    {
        lock (_sync)
        {
            var registration = _pending.FirstOrDefault(p =>
                p.Kind == kind && !p.Claimed && p.Vpid == parentVpid && p.ChildVpid is null);
            if (registration is not null)
            {
                registration.ChildVpid = childVpid;
            }
        }
    }

    /// <summary>FORK_END -1, EXEC_FAIL or SPAWN_END 0: no HELLO will come.</summary>
    public void ReportFailed(RegistrationKind kind, int vpid)
    {
        lock (_sync)
        {
            var registration = _pending.FirstOrDefault(p =>
                p.Kind == kind && !p.Claimed && p.Vpid == vpid && p.ChildVpid is null);
            if (registration is not null && _pending.Remove(registration))
            {
                Signal();
            }
        }
    }

    /// <summary>
    /// Step 1 of a checkpoint: stops new registrations and waits, at most
    /// <paramref name="timeout"/>, for those in flight. Disposing the lease opens the lock again.
    /// </summary>
    public async Task<GateLease> CloseForCheckpointAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            if (_mode is GateMode.Restoring or GateMode.Resuming)
            {
                throw AgentException.FailedPrecondition($"group {_group} is being restored; checkpoint it once the restore finished");
            }
            if (_mode != GateMode.Open)
            {
                throw AgentException.FailedPrecondition($"a checkpoint of group {_group} is already running; wait for it to finish");
            }
            _mode = GateMode.Closing;
            Signal();
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await WaitUntilAsync(() =>
            {
                if (_pending.Count > 0)
                {
                    return null;
                }
                _mode = GateMode.Held;
                return new GateLease(Open);
            }, countAsWaiting: false, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            string inFlight;
            int count;
            lock (_sync)
            {
                count = _pending.Count;
                inFlight = string.Join(", ", _pending.Select(p => p.Describe()).Distinct());
                _mode = GateMode.Open;
                Signal();
            }
            cancellationToken.ThrowIfCancellationRequested();
            throw AgentException.Unavailable(
                $"checkpoint of group {_group} could not start: {count} registration(s) still in progress after {Durations.Describe(timeout)} ({inFlight}); try again");
        }
    }

    /// <summary>Holds the lock for a restore: only HELLOs of restored processes are answered.</summary>
    public Task<GateLease> HoldForRestoreAsync(CancellationToken cancellationToken) =>
        WaitUntilAsync(() =>
        {
            if (_mode != GateMode.Open)
            {
                return null;
            }
            _mode = GateMode.Restoring;
            Signal();
            return new GateLease(Open);
        }, countAsWaiting: false, cancellationToken);

    /// <summary>
    /// Every restored process registered and the restore starts resuming them: from now on they
    /// may fork, exec and spawn (an application resumed first may need to before the next one is
    /// resumed); checkpoints still wait until the restore's lease is released.
    /// </summary>
    public void BeginResuming()
    {
        lock (_sync)
        {
            if (_mode != GateMode.Restoring)
            {
                throw new InvalidOperationException($"group {_group}: resuming without a restore holding the registration lock (mode {_mode})");
            }
            _mode = GateMode.Resuming;
            Signal();
        }
    }

    /// <summary>Whether an exec of <paramref name="vpid"/> is in flight (its HELLO may already be on its way).</summary>
    public bool HasPendingExec(int vpid)
    {
        lock (_sync)
        {
            return _pending.Any(p => p.Kind == RegistrationKind.Exec && p.Vpid == vpid);
        }
    }

    /// <summary>The group's processes are gone: nothing they had in flight will complete.</summary>
    public void DropProcessRegistrations()
    {
        lock (_sync)
        {
            if (_pending.RemoveAll(p => p.Kind is RegistrationKind.Fork or RegistrationKind.Exec or RegistrationKind.Spawn) > 0)
            {
                Signal();
            }
        }
    }

    private void Open()
    {
        lock (_sync)
        {
            _mode = GateMode.Open;
            Signal();
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private bool AdmitsRegistrations => _mode is GateMode.Open or GateMode.Resuming;

    /// <summary>Must be called under the lock.</summary>
    private (bool Matched, PendingRegistration? Claim) Match(HelloMessage hello)
    {
        var unclaimed = _pending.Where(p => !p.Claimed);
        switch (hello.Origin)
        {
            case RegistrationOrigin.Exec:
                var exec = unclaimed.FirstOrDefault(p => p.Kind == RegistrationKind.Exec && p.Vpid == hello.Vpid);
                return (exec is not null, exec);
            case RegistrationOrigin.Fork or RegistrationOrigin.Spawn:
                var kind = hello.Origin == RegistrationOrigin.Fork ? RegistrationKind.Fork : RegistrationKind.Spawn;
                var candidates = unclaimed.Where(p => p.Kind == kind).ToList();
                // The child named by FORK_END first; then a fork of its parent (FORK_END may come
                // after the child's HELLO); then any fork, in case the parent died and the child was
                // re-parented before it said HELLO.
                var claim = candidates.FirstOrDefault(p => p.ChildVpid == hello.Vpid)
                    ?? candidates.FirstOrDefault(p => p.ChildVpid is null && p.Vpid == hello.Vppid)
                    ?? candidates.FirstOrDefault(p => p.ChildVpid is null);
                return (claim is not null, claim);
            case RegistrationOrigin.Launch:
                // The launcher completes its own registration once it sees the member.
                return (_pending.Any(p => p.Kind == RegistrationKind.Launch), null);
            default:
                return (false, null);
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private PendingRegistration Add(RegistrationKind kind, int vpid)
    {
        var registration = new PendingRegistration(kind, vpid);
        _pending.Add(registration);
        if (kind is RegistrationKind.Fork or RegistrationKind.Exec or RegistrationKind.Spawn)
        {
            // The child may never say HELLO (a static program, a crash before the interceptor
            // connected); checkpoints must not wait for it forever.
            _ = ExpireLaterAsync(registration);
        }
        return registration;
    }

    private async Task ExpireLaterAsync(PendingRegistration registration)
    {
        await Task.Delay(_grace, _time).ConfigureAwait(false);
        bool expired;
        lock (_sync)
        {
            expired = !registration.Claimed && _pending.Remove(registration);
            if (expired)
            {
                Signal();
            }
        }
        if (expired)
        {
            _logger.LogWarning(
                "Group {Group}: {Registration} never said HELLO within {Grace}; no longer waiting for it (is the new program dynamically linked?)",
                _group, registration.Describe(), Durations.Describe(_grace));
            _expired(registration);
        }
    }

    private async Task<T> WaitUntilAsync<T>(Func<T?> attempt, bool countAsWaiting, CancellationToken cancellationToken)
        where T : class
    {
        var counted = false;
        try
        {
            while (true)
            {
                Task changed;
                lock (_sync)
                {
                    if (attempt() is { } result)
                    {
                        return result;
                    }
                    if (countAsWaiting && !counted)
                    {
                        _waiting++;
                        counted = true;
                    }
                    changed = _changed.Task;
                }
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            if (counted)
            {
                lock (_sync)
                {
                    _waiting--;
                }
            }
        }
    }

    /// <summary>Must be called under the lock.</summary>
    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>Holding the registration lock; disposing releases it exactly once.</summary>
internal sealed class GateLease(Action release) : IDisposable
{
    private Action? _release = release;

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}
