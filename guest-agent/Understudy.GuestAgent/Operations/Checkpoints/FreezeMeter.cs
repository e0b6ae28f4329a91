using System.Diagnostics;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// How long a checkpoint kept its group frozen: from PREPARE sent until RESUME (or ABORT) went to
/// every member. Whoever runs the checkpoint reads it afterwards, whether it was taken or aborted
/// (the frozenMs of checkpoint.taken and checkpoint.failed).
/// </summary>
internal sealed class FreezeMeter
{
    private readonly Stopwatch _frozen = new();
    private double? _frozenMs;

    /// <summary>Frozen time in milliseconds; 0 when the group was never frozen.</summary>
    public double FrozenMs => _frozenMs ?? _frozen.Elapsed.TotalMilliseconds;

    /// <summary>Time since the freeze began, while it lasts.</summary>
    public TimeSpan Elapsed => _frozen.Elapsed;

    public void Freeze() => _frozen.Start();

    /// <summary>The group runs again (RESUME or ABORT sent); later calls change nothing.</summary>
    public void Thaw()
    {
        if (_frozen.IsRunning && _frozenMs is null)
        {
            _frozen.Stop();
            _frozenMs = _frozen.Elapsed.TotalMilliseconds;
        }
    }
}
