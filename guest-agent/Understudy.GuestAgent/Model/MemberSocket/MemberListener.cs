using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Model.MemberSocket;

/// <summary>
/// Listens on STATE/coord.sock, where every interceptor connects, and runs one
/// <see cref="MemberConnection"/> per accepted process. A process that no longer runs as root
/// or the agent's user (it dropped its privileges, then exec'd or lost its link) cannot reach
/// that path: it connects to the same name in the abstract namespace, and is admitted only if
/// it runs in the pid namespace of one of the agent's groups, for that group and its own pid
/// there only (docs/protocol.md, "State directory").
/// </summary>
internal sealed class MemberListener : IHostedService
{
    private readonly StatePaths _paths;
    private readonly GroupRegistry _groups;
    private readonly IMemberMessageHandler _handler;
    private readonly ILogger<MemberListener> _logger;
    private readonly ILogger<MemberConnection> _connectionLogger;
    private readonly ConcurrentDictionary<long, (MemberConnection Connection, Task Run)> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Socket> _listeners = [];
    private readonly List<Task> _acceptLoops = [];
    private long _lastConnectionId;

    public MemberListener(
        StatePaths paths, GroupRegistry groups, IMemberMessageHandler handler, ILogger<MemberListener> logger,
        ILogger<MemberConnection> connectionLogger)
    {
        _paths = paths;
        _groups = groups;
        _handler = handler;
        _logger = logger;
        _connectionLogger = connectionLogger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var path = _paths.CoordSocket;
        UnixSocketFile.PrepareForBind(path);
        Listen(new UnixDomainSocketEndPoint(path), () => File.SetUnixFileMode(path, UnixSocketFile.OwnerOnly));
        _logger.LogInformation("Member socket listening on {Socket}", path);
        // Where the interceptor looks when the path is out of its reach: "\0" and the path.
        try
        {
            Listen(new UnixDomainSocketEndPoint("\0" + path), setMode: null);
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            _logger.LogWarning(
                "No abstract member socket @{Socket} ({Error}): a process of a group that dropped its privileges and then exec'd stays unprotected",
                path, e.Message);
        }
        return Task.CompletedTask;
    }

    private void Listen(UnixDomainSocketEndPoint endPoint, Action? setMode)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(endPoint);
            // STATE is 0700 already; the socket itself is private too (docs/protocol.md).
            setMode?.Invoke();
            listener.Listen(256);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listeners.Add(listener);
        _acceptLoops.Add(Task.Run(() => AcceptLoopAsync(listener), CancellationToken.None));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }
        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        foreach (var (connection, _) in _connections.Values)
        {
            connection.Close();
        }
        try
        {
            await Task.WhenAll(_connections.Values.Select(c => c.Run)).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        TryDelete(_paths.CoordSocket);
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                _logger.LogWarning("Accepting on the member socket failed: {Error}", e.Message);
                continue;
            }
            Accept(socket);
        }
    }

    /// <summary>
    /// The group and pid a peer that is neither root nor the agent's user may register as: its own
    /// group's, found by the pid namespace it runs in, or null when it is in no group's.
    /// </summary>
    private MemberConfinement? ConfinementOf(Socket socket)
    {
        if (PeerProcess.Of(socket) is not { } peer)
        {
            return null;
        }
        foreach (var group in _groups.All())
        {
            if (group.Init is { HasExited: false } init && ProcFs.PidNamespace(init.HostPid) == peer.PidNamespace)
            {
                return new MemberConfinement(group.Name, peer.NamespacePid);
            }
        }
        return null;
    }

    private void Accept(Socket socket)
    {
        PeerCredentials peer;
        try
        {
            peer = PeerCredentials.Of(socket);
        }
        catch (SocketException e)
        {
            _logger.LogWarning("Closed a member connection whose credentials could not be read: {Error}", e.Message);
            socket.Dispose();
            return;
        }
        MemberConfinement? confinement = null;
        if (!peer.IsTrusted && (confinement = ConfinementOf(socket)) is null)
        {
            _logger.LogWarning(
                "Closed a member connection from pid {Pid}: uid {Uid} is neither the agent's nor root, and it runs in no group's pid namespace",
                peer.Pid, peer.Uid);
            socket.Dispose();
            return;
        }

        var id = Interlocked.Increment(ref _lastConnectionId);
        var connection = new MemberConnection(socket, id, peer.Pid, _connectionLogger) { Confinement = confinement };
        // Listed before it runs, so that its own removal can never come first.
        _connections[id] = (connection, Task.CompletedTask);
        var run = Task.Run(async () =>
        {
            try
            {
                await connection.RunAsync(_handler).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Member connection {Connection} failed", id);
            }
            finally
            {
                _connections.TryRemove(id, out _);
            }
        });
        _connections.TryUpdate(id, (connection, run), (connection, Task.CompletedTask));
        if (_stopping.IsCancellationRequested)
        {
            connection.Close();
        }
    }

    private void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogDebug("Could not remove {Socket}: {Error}", path, e.Message);
        }
    }
}
