namespace Understudy.Images;

/// <summary>US_MADV_* bits: memory attributes /proc/PID/smaps shows in VmFlags and a restore sets again.</summary>
[Flags]
public enum MemoryAdviceFlags : uint
{
    None = 0,
    DontFork = 1,       // dc: MADV_DONTFORK
    WipeOnFork = 2,     // wf: MADV_WIPEONFORK
    DontDump = 4,       // dd: MADV_DONTDUMP
    HugePage = 8,       // hg: MADV_HUGEPAGE
    NoHugePage = 16,    // nh: MADV_NOHUGEPAGE
    Locked = 32,        // lo: mlock
    LockOnFault = 64,   // lf: mlock2 MLOCK_ONFAULT, with Locked
}

/// <summary>struct us_madvice: a range of memory and the attributes a restore gives it again.</summary>
public sealed record MemoryAdvice(ulong Start, ulong End, MemoryAdviceFlags Flags)
{
    /// <summary>Every flag this version knows (US_MADV_ALL).</summary>
    public const MemoryAdviceFlags AllFlags = (MemoryAdviceFlags)127;
}
