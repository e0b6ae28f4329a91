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
    /// Silence of 5 s is probed every second, 5 times; data unacknowledged for 15 s ends the
    /// connection.
    /// </summary>
    public static void DetectDeadPeers(Socket socket)
    {
        socket.NoDelay = true;
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 5);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 1);
        socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 5);
        socket.SetRawSocketOption((int)ProtocolType.Tcp, TcpUserTimeout, BitConverter.GetBytes(15_000));
    }
}
