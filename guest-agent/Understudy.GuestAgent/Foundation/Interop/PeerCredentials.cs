using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>The credentials of the process at the other end of a Unix socket (SO_PEERCRED).</summary>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    public static PeerCredentials Of(Socket socket)
    {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        Span<byte> buffer = stackalloc byte[12];
        socket.GetRawSocketOption(SolSocket, SoPeerCred, buffer);
        return new PeerCredentials(
            MemoryMarshal.Read<int>(buffer),
            MemoryMarshal.Read<uint>(buffer[4..]),
            MemoryMarshal.Read<uint>(buffer[8..]));
    }

    /// <summary>
    /// Both sockets accept only the agent's own user and root (docs/protocol.md): anyone else
    /// could freeze or read the memory of the group's processes.
    /// </summary>
    public bool IsTrusted => Uid == 0 || Uid == Libc.EffectiveUserId;
}
