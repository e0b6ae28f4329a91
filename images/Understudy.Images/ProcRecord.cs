namespace Understudy.Images;

/// <summary>
/// struct us_rec_proc and its trailing exe, cwd, comm and auxv bytes. Strings are the raw
/// bytes decoded by <see cref="PosixString"/>, so any Linux path round-trips exactly.
/// </summary>
public sealed record ProcRecord(
    uint Vpid,
    uint Vppid,
    uint Vpgid,
    uint Vsid,
    uint Uid,
    uint Gid,
    uint ExecCount,
    uint Umask,
    ulong Entry,
    ulong EntryArg,
    MmLayout Mm,
    string Exe,
    string Cwd,
    string Comm,
    byte[] Auxv);

/// <summary>us_rec_proc.mm: the fields of prctl(PR_SET_MM_MAP), in enum us_mm_field order.</summary>
public sealed record MmLayout(
    ulong StartCode,
    ulong EndCode,
    ulong StartData,
    ulong EndData,
    ulong StartBrk,
    ulong Brk,
    ulong StartStack,
    ulong ArgStart,
    ulong ArgEnd,
    ulong EnvStart,
    ulong EnvEnd)
{
    /// <summary>The fields in file order.</summary>
    public ulong[] ToArray() =>
        [StartCode, EndCode, StartData, EndData, StartBrk, Brk, StartStack, ArgStart, ArgEnd, EnvStart, EnvEnd];

    public static MmLayout FromArray(ReadOnlySpan<ulong> f)
    {
        if (f.Length != ImageLayout.MmFieldCount)
        {
            throw new ArgumentException($"mm needs {ImageLayout.MmFieldCount} fields, got {f.Length}", nameof(f));
        }

        return new(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]);
    }
}
