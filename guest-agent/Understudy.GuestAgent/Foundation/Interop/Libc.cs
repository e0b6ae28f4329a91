using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>The few libc calls .NET has no managed equivalent for.</summary>
internal static class Libc
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const uint StatxMode = 0x2;
    private const uint StatxUid = 0x8;
    private const int StatxUidOffset = 20;   // struct statx: stx_uid is a __u32 at byte 20
    private const int StatxModeOffset = 28;  // struct statx: stx_mode is a __u16 at byte 28 on every architecture
    private const int SIfMt = 0xF000;
    private const int SIfSock = 0xC000;

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserIdNative();

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatxNative(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;

    [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static extern int FlockNative(int fd, int operation);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int KillNative(int pid, int signal);

    [DllImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static extern int FdatasyncNative(SafeHandle fd);

    /// <summary>
    /// fdatasync: the file's data, and its size, are on disk. Unlike fsync (RandomAccess.FlushToDisk)
    /// it commits no journal transaction for a file whose data is on disk already and whose only
    /// change since is its times.
    /// </summary>
    /// <exception cref="IOException">The kernel refused (a failed disk).</exception>
    public static void DataSync(SafeHandle file, string path)
    {
        if (FdatasyncNative(file) != 0)
        {
            throw new IOException($"fdatasync of {path} failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    public static uint EffectiveUserId => GetEffectiveUserIdNative();

    /// <summary>The inode number of <paramref name="path"/> (following symlinks), or null.</summary>
    public static ulong? Inode(string path)
    {
        const uint StatxIno = 0x100;
        const int StatxInoOffset = 32;  // struct statx: stx_ino is a __u64 at byte 32
        var buffer = new byte[256];
        return StatxNative(AtFdCwd, path, 0, StatxIno, buffer) == 0 ? BitConverter.ToUInt64(buffer, StatxInoOffset) : null;
    }

    /// <summary>
    /// When <paramref name="path"/> was created, to the nanosecond, as "seconds.nanoseconds"; null
    /// where the file system does not record it. It names one inode: a rename keeps it, a file made
    /// again under the same name gets another.
    /// </summary>
    public static string? BirthTime(string path)
    {
        const uint StatxBtime = 0x800;
        const int StatxBtimeOffset = 80; // struct statx: stx_btime is a statx_timestamp (__s64 tv_sec, __u32 tv_nsec) at byte 80
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, 0, StatxBtime, buffer) != 0 || (BitConverter.ToUInt32(buffer, 0) & StatxBtime) == 0)
        {
            return null;
        }
        return $"{BitConverter.ToInt64(buffer, StatxBtimeOffset)}.{BitConverter.ToUInt32(buffer, StatxBtimeOffset + 8):D9}";
    }

    /// <summary>flock(LOCK_EX | LOCK_NB): false when another open file description holds it.</summary>
    public static bool TryLockExclusive(SafeHandle file)
    {
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return FlockNative((int)file.DangerousGetHandle(), LockExclusive | LockNonBlocking) == 0;
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>kill(2); false if the process is gone or not ours to signal.</summary>
    public static bool Kill(int pid, int signal) => pid > 0 && KillNative(pid, signal) == 0;

    /// <summary>
    /// Whether <paramref name="path"/> is a Unix socket (not following symlinks). statx is used
    /// because its layout, unlike struct stat, is the same on every architecture.
    /// </summary>
    public static bool IsSocket(string path)
    {
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return false;
        }
        var mode = BitConverter.ToUInt16(buffer, StatxModeOffset);
        return (mode & SIfMt) == SIfSock;
    }

    /// <summary>
    /// The owner and mode (type and permission bits) of <paramref name="path"/>, following
    /// symbolic links; null when it does not exist or cannot be looked at.
    /// </summary>
    public static (uint Uid, int Mode)? OwnerAndMode(string path)
    {
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, 0, StatxType | StatxMode | StatxUid, buffer) != 0)
        {
            return null;
        }
        return (BitConverter.ToUInt32(buffer, StatxUidOffset), BitConverter.ToUInt16(buffer, StatxModeOffset));
    }
}
