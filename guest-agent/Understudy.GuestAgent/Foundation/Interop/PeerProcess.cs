using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>
/// Where the process at the other end of a Unix socket runs: its host pid, pid namespace and
/// pid in that namespace. Read through its pidfd (SO_PEERPIDFD), and trusted only if that very
/// process still runs once they are read: a pid alone may be a new process's by then.
/// </summary>
internal readonly record struct PeerProcess(int HostPid, string PidNamespace, int NamespacePid)
{
    private const int SolSocket = 1;
    private const int SoPeerPidFd = 77;
    private const long SysPidfdSendSignal = 424;

    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long SyscallNative(long number, int pidfd, int signal, nint info, uint flags);

    /// <summary>Null when the peer is gone, or the kernel cannot tell (no SO_PEERPIDFD).</summary>
    public static PeerProcess? Of(Socket socket)
    {
        Span<byte> buffer = stackalloc byte[sizeof(int)];
        try
        {
            socket.GetRawSocketOption(SolSocket, SoPeerPidFd, buffer);
        }
        catch (SocketException)
        {
            return null;
        }
        using var pidfd = new SafeFileHandle(MemoryMarshal.Read<int>(buffer), ownsHandle: true);
        var fd = (int)pidfd.DangerousGetHandle();
        var pid = FdInfoPid(fd);
        var ns = pid > 0 ? ProcFs.PidNamespace(pid) : null;
        var nsPid = ns is null ? 0 : ProcFs.InnermostPid(pid);
        if (ns is null || nsPid <= 0)
        {
            return null;
        }
        // Signal 0 through the pidfd: the process whose namespace was just read is still the peer.
        return SyscallNative(SysPidfdSendSignal, fd, 0, 0, 0) == 0 ? new PeerProcess(pid, ns, nsPid) : null;
    }

    private static int FdInfoPid(int fd)
    {
        try
        {
            var line = File.ReadLines($"/proc/self/fdinfo/{fd}").FirstOrDefault(l => l.StartsWith("Pid:", StringComparison.Ordinal));
            return line is not null && int.TryParse(line[4..].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) ? pid : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}
