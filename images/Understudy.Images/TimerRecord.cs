namespace Understudy.Images;

/// <summary>
/// struct us_rec_timer: a POSIX timer of the process (timer_create), as /proc/PID/timers and
/// timer_gettime showed it at the checkpoint. A restore makes it again under <see cref="Id"/>.
/// </summary>
/// <param name="Id">The kernel's timer id, which timer_create gave.</param>
/// <param name="Notify">SIGEV_SIGNAL 0 or SIGEV_NONE 1, with SIGEV_THREAD_ID 4 when it signals one thread.</param>
/// <param name="Value">sigev_value, delivered with each signal.</param>
/// <param name="Tid">With SIGEV_THREAD_ID: the thread it signals; otherwise 0.</param>
/// <param name="IntervalNs">0 for a one-shot timer.</param>
/// <param name="ValueNs">Nanoseconds until the next expiry; 0 when disarmed.</param>
public sealed record TimerRecord(int Id, int ClockId, int Notify, int Signo, ulong Value, int Tid, ulong IntervalNs, ulong ValueNs)
{
    public const int SigevSignal = 0;
    public const int SigevNone = 1;
    public const int SigevThreadId = 4;

    /// <summary>Whether it signals one thread (SIGEV_THREAD_ID) rather than the process.</summary>
    public bool SignalsThread => (Notify & SigevThreadId) != 0;

    public bool IsArmed => ValueNs != 0;
}
