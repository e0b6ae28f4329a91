using System.Net.Sockets;

namespace Understudy.GuestAgent.Foundation.Peers;

/// <summary>
/// A push connection carries no pings of its own: the kernel finds a dead peer. A node that
/// crashed or was cut off sends no reset, and an end that waits would otherwise wait forever,
/// holding the group's receive lock or a migration's frozen group.
/// </summary>
internal static class PeerSockets
{
    // IPPROTO_TCP's TCP_USER_TIMEOUT (linux/tcp.h); .NET names no constant for it.
    private const int TcpUserTimeout = 18;

    /// <summary>
    /// Silence is probed every second once it lasted half the peer timeout, until the timeout; data
    /// unacknowledged for one and a half times the timeout ends the connection (by default: 5 s, 5
    /// probes, 15 s).
    /// </summary>
    public static void DetectDeadPeers(Socket socket, PeerDeadlines deadlines)
    {
        socket.NoDelay = true;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, deadlines.KeepAliveIdleSeconds);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 1);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, deadlines.KeepAliveProbes);
        socket.SetRawSocketOption((int)ProtocolType.Tcp, TcpUserTimeout, BitConverter.GetBytes((int)deadlines.UnacknowledgedData.TotalMilliseconds));
    }
}
