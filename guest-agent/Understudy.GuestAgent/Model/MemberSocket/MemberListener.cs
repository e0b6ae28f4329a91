using System.Collections.Concurrent;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Model.MemberSocket;

/// <summary>
/// Listens on STATE/coord.sock, where every interceptor connects, and runs one
/// <see cref="MemberConnection"/> per accepted process.
/// </summary>
internal sealed class MemberListener : IHostedService
{
    private readonly StatePaths _paths;
    private readonly IMemberMessageHandler _handler;
    private readonly ILogger<MemberListener> _logger;
    private readonly ILogger<MemberConnection> _connectionLogger;
    private readonly ConcurrentDictionary<long, (MemberConnection Connection, Task Run)> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private long _lastConnectionId;

    public MemberListener(
        StatePaths paths, IMemberMessageHandler handler, ILogger<MemberListener> logger, ILogger<MemberConnection> connectionLogger)
    {
        _paths = paths;
        _handler = handler;
        _logger = logger;
        _connectionLogger = connectionLogger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var path = _paths.CoordSocket;
        UnixSocketFile.PrepareForBind(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(path));
            // STATE is 0700 already; the socket itself is private too (docs/protocol.md).
            File.SetUnixFileMode(path, UnixSocketFile.OwnerOnly);
            listener.Listen(256);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        _logger.LogInformation("Member socket listening on {Socket}", path);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
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

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptAsync(_stopping.Token).ConfigureAwait(false);
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
        if (!peer.IsTrusted)
        {
            _logger.LogWarning(
                "Closed a member connection from pid {Pid}: uid {Uid} is neither the agent's nor root", peer.Pid, peer.Uid);
            socket.Dispose();
            return;
        }

        var id = Interlocked.Increment(ref _lastConnectionId);
        var connection = new MemberConnection(socket, id, peer.Pid, _connectionLogger);
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
