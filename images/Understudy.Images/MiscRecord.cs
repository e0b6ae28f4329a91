namespace Understudy.Images;

/// <summary>struct us_rec_misc.</summary>
/// <param name="Itimers">ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: exactly three.</param>
/// <param name="RlimCur">Soft limits in RLIMIT_* order: exactly sixteen.</param>
/// <param name="PendingShared">Process-wide pending signals, bit n-1 = signal n.</param>
public sealed record MiscRecord(IReadOnlyList<ItimerValue> Itimers, IReadOnlyList<ulong> RlimCur, ulong PendingShared);

/// <summary>One row of us_rec_misc.itimer: interval and value, seconds and microseconds.</summary>
public readonly record struct ItimerValue(long IntervalSec, long IntervalUsec, long ValueSec, long ValueUsec);
