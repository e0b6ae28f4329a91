namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// The start, recovery or restore a supervisor has in progress, and how it is interrupted: an
/// application dying meanwhile aborts it with that reason, and a stop (restart, shutdown)
/// waiting for its turn makes it give way, also one that has not begun yet.
/// </summary>
internal sealed class OperationControl
{
    private readonly object _sync = new();
    private CancellationTokenSource? _current;
    private string? _abortReason;
    private bool _stopping;

    /// <summary>Why the operation was aborted, if it was.</summary>
    public string? AbortReason
    {
        get { lock (_sync) { return _abortReason; } }
    }

    /// <summary>A stop, restart or shutdown is waiting: the operation was not a failure of the group.</summary>
    public bool StopRequested
    {
        get { lock (_sync) { return _stopping; } }
    }

    /// <summary>A new operation; its token is cancelled at once if a stop is waiting.</summary>
    public CancellationTokenSource Begin(CancellationToken cancellationToken)
    {
        lock (_sync)
        {
            _current = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (_stopping)
            {
                _current.Cancel();
            }
            else
            {
                _abortReason = null;
            }
            return _current;
        }
    }

    /// <summary>The operation in progress fails, for <paramref name="reason"/> (the first reason given wins).</summary>
    public void Abort(string reason)
    {
        lock (_sync)
        {
            _abortReason ??= reason;
            try
            {
                _current?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // It already ended.
            }
        }
    }

    /// <summary>Interrupts the operation in progress, and any that begins, until <see cref="EndStop"/>.</summary>
    public void RequestStop(string reason)
    {
        lock (_sync)
        {
            _stopping = true;
            _abortReason = reason;
        }
        Abort(reason);
    }

    public void EndStop()
    {
        lock (_sync)
        {
            _stopping = false;
            _abortReason = null;
        }
    }
}
