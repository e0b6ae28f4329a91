using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>The few libc calls .NET has no managed equivalent for.</summary>
internal static class Libc
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28;  // struct statx: stx_mode is a __u16 at byte 28 on every architecture
    private const int SIfMt = 0xF000;
    private const int SIfSock = 0xC000;

    [DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserIdNative();

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatxNative(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    public static uint EffectiveUserId => GetEffectiveUserIdNative();

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
}
