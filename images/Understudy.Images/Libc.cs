using System.Runtime.InteropServices;

namespace Understudy.Images;

/// <summary>The few POSIX calls .NET does not offer: fsync of a directory and an exclusive mkdir.</summary>
internal static partial class Libc
{
    public const int ORdonly = 0;
    public const int OWronly = 0x1;
    public const int ORdwr = 0x2;
    public const int OCreat = 0x40;
    public const int OTrunc = 0x200;
    public const int OAppend = 0x400;
    public const int OCloexec = 0x80000;
    public const int EExist = 17;
    public const int ELoop = 40;

    private static readonly bool ArmLayout = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64;

    // O_DIRECTORY is 040000 on ARM and 0200000 on x86 and the generic Linux ABI.
    private static readonly int ODirectory = ArmLayout ? 0x4000 : 0x10000;

    // O_NOFOLLOW is 0100000 on ARM and 0400000 on x86 and the generic Linux ABI.
    public static readonly int ONoFollow = ArmLayout ? 0x8000 : 0x20000;

    /// <summary>Makes a directory's entries (a rename, a new file) durable.</summary>
    public static void FsyncDirectory(string path)
    {
        int fd = Open(path, ORdonly | ODirectory | OCloexec, 0);
        if (fd < 0)
        {
            throw Failure("open", path);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw Failure("fsync", path);
            }
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>Creates a directory; false if the name already exists. This is how staging ids are claimed atomically.</summary>
    public static bool TryMakeDirectory(string path, UnixFileMode mode)
    {
        if (MakeDirectory(path, (uint)mode) == 0)
        {
            return true;
        }

        if (Marshal.GetLastPInvokeError() == EExist)
        {
            return false;
        }

        throw Failure("mkdir", path);
    }

    private static IOException Failure(string call, string path)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} {path} failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
    }

    /// <summary>open(2): a descriptor, or -1 with errno (<see cref="Marshal.GetLastPInvokeError"/>).</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeDirectory(string path, uint mode);

    /// <summary>A file's device (in st_dev's encoding, glibc's makedev) and inode, or null when it cannot be read.</summary>
    public static (ulong Dev, ulong Inode)? Identity(string path)
    {
        // struct statx: stx_ino at 32, stx_dev_major and stx_dev_minor at 136 and 140.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxIno, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return null;
        }
        ulong major = BitConverter.ToUInt32(buffer[136..]), minor = BitConverter.ToUInt32(buffer[140..]);
        ulong dev = (major & 0xfff) << 8 | (minor & 0xff) | (major & ~0xfffUL) << 32 | (minor & ~0xffUL) << 12;
        return (dev, BitConverter.ToUInt64(buffer[32..]));
    }

    /// <summary>
    /// What changes whenever a file's contents may have changed, or null when it cannot be read:
    /// its device, inode, size and status change time, which no call can set back (unlike mtime).
    /// </summary>
    public static FileStamp? Stamp(string path)
    {
        // struct statx: stx_ino at 32, stx_size at 40, stx_ctime (tv_sec, tv_nsec) at 96, stx_dev at 136.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, 0, StatxIno | StatxSize | StatxCtime, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return null;
        }
        return new FileStamp(
            BitConverter.ToUInt64(buffer[136..]), BitConverter.ToUInt64(buffer[32..]), BitConverter.ToInt64(buffer[40..]),
            BitConverter.ToInt64(buffer[96..]), BitConverter.ToUInt32(buffer[104..]));
    }

    private const int AtFdCwd = -100;
    private const uint StatxCtime = 0x80;
    private const uint StatxIno = 0x100;
    private const uint StatxSize = 0x200;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte statx);
}

/// <summary>A file as <see cref="Libc.Stamp"/> saw it: equal stamps, unchanged contents (short of the disk failing).</summary>
internal readonly record struct FileStamp(ulong Dev, ulong Inode, long Size, long ChangeSeconds, uint ChangeNanoseconds)
{
    public DateTimeOffset Changed => DateTimeOffset.FromUnixTimeSeconds(ChangeSeconds).AddTicks(ChangeNanoseconds / 100);
}
