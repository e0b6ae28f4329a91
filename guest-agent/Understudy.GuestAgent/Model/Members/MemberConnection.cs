using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>The member socket went away while the coordinator was talking to it.</summary>
internal sealed class MemberDisconnectedException(string message) : Exception(message);

/// <summary>
/// What a connection from a process that is neither root nor the agent's user may register as:
/// a member of the group whose pid namespace it runs in, with its own pid there.
/// </summary>
internal sealed record MemberConfinement(string Group, int Vpid);

/// <summary>
/// One process's connection to the coordinator: reads and parses its lines, writes commands,
/// and queues its answers (FROZEN, WRITTEN, ...) for whoever runs the current checkpoint or
/// restore round. What the messages mean is the <see cref="IMemberMessageHandler"/>'s business.
/// </summary>
internal sealed class MemberConnection
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _closed = new();
    private readonly Channel<MemberReply> _replies =
        Channel.CreateUnbounded<MemberReply>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly List<Task> _requests = [];
    private readonly ILogger _logger;
    private Member? _member;
    // Every RESUME and ABORT is answered by one RESUMED, in order (docs/protocol.md): how many went
    // out, how many were answered, and how many must be answered before replies count again.
    private long _resumesSent;
    private long _resumesAnswered;
    private long _lateUntilAnswered;

    public MemberConnection(Socket socket, long id, int hostPid, ILogger logger)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        Id = id;
        HostPid = hostPid;
        _logger = logger;
    }

    public long Id { get; }

    /// <summary>The process's pid as the agent sees it (SO_PEERCRED).</summary>
    public int HostPid { get; }

    /// <summary>Set for a peer admitted by its pid namespace (not by its uid): whom it may register as.</summary>
    public MemberConfinement? Confinement { get; init; }

    /// <summary>Cancelled once the connection is closed, by either side.</summary>
    public CancellationToken Closed => _closed.Token;

    public bool IsClosed => _closed.IsCancellationRequested;

    /// <summary>The agent closed it (<see cref="Close"/>: a shutdown, a member it let go), not the process.</summary>
    public bool ClosedByAgent { get; private set; }

    /// <summary>
    /// Answers to coordinator commands, in arrival order. Completed when the connection closes,
    /// which is how a round learns that a member died.
    /// </summary>
    public ChannelReader<MemberReply> Replies => _replies.Reader;

    /// <summary>The member this connection registered (set by the HELLO request, read by the read loop).</summary>
    public Member? Member
    {
        get => Volatile.Read(ref _member);
        set => Volatile.Write(ref _member, value);
    }

    /// <summary>Reads lines until the peer closes the connection or <see cref="Close"/> is called.</summary>
    public async Task RunAsync(IMemberMessageHandler handler)
    {
        var reader = new LineReader(_stream);
        try
        {
            while (await reader.ReadLineAsync(_closed.Token).ConfigureAwait(false) is { } line)
            {
                if (!MemberMessageParser.TryParse(line, out var message, out var error))
                {
                    _logger.LogWarning("Member connection {Connection} (pid {HostPid}) sent a bad line: {Error}", Id, HostPid, error);
                    continue;
                }
                if (message is MemberReply reply)
                {
                    // Only this loop changes it.
                    var answered = _resumesAnswered;
                    if (reply is ResumedReply)
                    {
                        Volatile.Write(ref _resumesAnswered, answered + 1);
                    }
                    if (answered >= Volatile.Read(ref _lateUntilAnswered))
                    {
                        _replies.Writer.TryWrite(reply);
                    }
                    else
                    {
                        _logger.LogDebug("Member connection {Connection} (pid {HostPid}): {Line} came late, for a round that was aborted", Id, HostPid, line);
                    }
                }
                handler.OnMessage(this, message!);
            }
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or ObjectDisposedException)
        {
            _logger.LogDebug("Member connection {Connection} (pid {HostPid}) ended: {Error}", Id, HostPid, e.Message);
        }
        finally
        {
            await reader.DisposeAsync().ConfigureAwait(false);
            await _closed.CancelAsync().ConfigureAwait(false);
            _replies.Writer.TryComplete();
            // Requests that wait (HELLO, *_BEGIN) observe Closed and end; the handler must see the
            // end of the connection only after them, so that a HELLO cannot register a dead member.
            await Task.WhenAll(TakeRequests()).ConfigureAwait(false);
            await handler.OnDisconnectedAsync(this).ConfigureAwait(false);
            await _stream.DisposeAsync().ConfigureAwait(false);
            _socket.Dispose();
        }
    }

    /// <summary>
    /// Runs a request whose reply may have to wait (for the registration lock) without holding
    /// up the read loop: a member must still be able to answer PREPARE while one of its threads
    /// waits for GRANT.
    /// </summary>
    public void TrackRequest(Func<Task> request)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                await request().ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or MemberDisconnectedException)
            {
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Member connection {Connection} (pid {HostPid}): request failed", Id, HostPid);
            }
        });
        lock (_requests)
        {
            _requests.RemoveAll(t => t.IsCompleted);
            _requests.Add(task);
        }
    }

    /// <summary>
    /// Called after an aborted round sent its ABORT: the replies still to come from that round (a
    /// late FROZEN, CAPTURED or FAILED, the ABORT's RESUMED) are not queued, so that the next round
    /// cannot take them for its own answers. They are all those before the RESUMED that answers the
    /// last RESUME or ABORT sent; once that one came (or if it already did), replies count again.
    /// </summary>
    public void IgnoreLateReplies() => Volatile.Write(ref _lateUntilAnswered, Interlocked.Read(ref _resumesSent));

    public Task SendAsync(MemberCommand command, CancellationToken cancellationToken = default) =>
        SendAsync(command, beforeSending: null, cancellationToken);

    /// <summary>
    /// Runs <paramref name="register"/>, then sends WELCOME, with the connection's write lock held
    /// across both. Registering makes the member visible, and whoever waited for it (a restore
    /// about to send RESUME) may write at once; the interceptor reads nothing but WELCOME until
    /// WELCOME arrives, so nothing may overtake it.
    /// </summary>
    public Task RegisterAndWelcomeAsync(Action register, WelcomeCommand welcome, CancellationToken cancellationToken) =>
        SendAsync(welcome, register, cancellationToken);

    private async Task SendAsync(MemberCommand command, Action? beforeSending, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(command.ToLine() + "\n");
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (IsClosed)
            {
                throw new MemberDisconnectedException("connection closed");
            }
            beforeSending?.Invoke();
            if (command is ResumeCommand or AbortCommand)
            {
                Interlocked.Increment(ref _resumesSent);   // before its RESUMED can come
            }
            if (command.Descriptors.Count > 0)
            {
                DescriptorPassing.Send(_socket, bytes, command.Descriptors, cancellationToken);
            }
            else
            {
                await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            throw new MemberDisconnectedException(e.Message);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Closes the connection; the read loop then ends and reports the disconnect.</summary>
    public void Close()
    {
        if (_closed.IsCancellationRequested)
        {
            return;
        }
        ClosedByAgent = true;
        try
        {
            _closed.Cancel();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private Task[] TakeRequests()
    {
        lock (_requests)
        {
            var tasks = _requests.ToArray();
            _requests.Clear();
            return tasks;
        }
    }
}
