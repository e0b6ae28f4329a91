using System.ComponentModel;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// Breaks a member's link to its agent from outside, the process and the agent left alone: the
/// test takes a copy of the process's socket (pidfd_getfd) and shuts the connection down, so that
/// both ends read its end, as when a link fails.
/// </summary>
internal static class MemberLinks
{
    private const long SysPidfdOpen = 434, SysPidfdGetfd = 438;
    private const int ShutReadWrite = 2;

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long arg1, long arg2, long arg3);

    [DllImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    private static extern int Shutdown(int fd, int how);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    /// <summary>Shuts down the only socket of <paramref name="hostPid"/>, which for the test workloads is the interceptor's link.</summary>
    public static void Break(int hostPid)
    {
        var sockets = Directory.GetFiles($"/proc/{hostPid}/fd")
            .Where(fd => new FileInfo(fd).LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true)
            .Select(fd => int.Parse(Path.GetFileName(fd), CultureInfo.InvariantCulture))
            .ToList();
        Assert.True(sockets.Count == 1, $"process {hostPid} has {sockets.Count} sockets, not only its link: {string.Join(' ', sockets)}");
        var pidfd = Checked(Syscall(SysPidfdOpen, hostPid, 0, 0), "pidfd_open");
        try
        {
            var link = Checked(Syscall(SysPidfdGetfd, pidfd, sockets[0], 0), "pidfd_getfd");
            try
            {
                Checked(Shutdown(link, ShutReadWrite), "shutdown");
            }
            finally
            {
                Close(link);
            }
        }
        finally
        {
            Close(pidfd);
        }
    }

    private static int Checked(long result, string call) =>
        result >= 0 ? (int)result : throw new Win32Exception(Marshal.GetLastWin32Error(), $"{call} failed");
}
