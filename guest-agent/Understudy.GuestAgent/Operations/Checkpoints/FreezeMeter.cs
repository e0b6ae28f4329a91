using System.Diagnostics;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// How long a checkpoint kept its group frozen: from PREPARE sent until RESUME (or ABORT) went to
/// every member, less the time every member still ran after PREPARE (its survey of its memory
/// map). Whoever runs the checkpoint reads it afterwards, whether it was taken or aborted (the
/// frozenMs of checkpoint.taken and checkpoint.failed).
/// </summary>
internal sealed class FreezeMeter
{
    private readonly Stopwatch _frozen = new();
    private TimeSpan _running;
    private double? _frozenMs;

    /// <summary>Frozen time in milliseconds; 0 when the group was never frozen.</summary>
    public double FrozenMs => _frozenMs ?? Frozen.TotalMilliseconds;

    private TimeSpan Frozen => _frozen.Elapsed > _running ? _frozen.Elapsed - _running : TimeSpan.Zero;

    /// <summary>Time since the freeze began, while it lasts.</summary>
    public TimeSpan Elapsed => _frozen.Elapsed;

    public void Freeze() => _frozen.Start();

    /// <summary>Every member still ran for this long after PREPARE.</summary>
    public void NotFrozenFor(TimeSpan running) => _running = running;

    /// <summary>The group runs again (RESUME or ABORT sent); later calls change nothing.</summary>
    public void Thaw()
    {
        if (_frozen.IsRunning && _frozenMs is null)
        {
            _frozen.Stop();
            _frozenMs = Frozen.TotalMilliseconds;
        }
    }
}
