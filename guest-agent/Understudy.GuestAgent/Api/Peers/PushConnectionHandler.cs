using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>
/// The standby's end of a push connection (<see cref="PushFrames"/>), opened by a node whose
/// certificate the cluster's CA signed (the peer endpoint's handshake refused the others): the
/// checkpoints it pushes, one after the other, go to <see cref="ReplicaReceiver"/>, each answered
/// with <see cref="PushReply"/> once committed, or <see cref="PushRefused"/> and the end of the
/// connection.
/// </summary>
internal sealed class PushConnectionHandler
{
    private readonly ReplicaReceiver _receiver;
    private readonly ReplicationFaults _faults;
    private readonly ILogger<PushConnectionHandler> _logger;

    public PushConnectionHandler(ReplicaReceiver receiver, ReplicationFaults faults, ILogger<PushConnectionHandler> logger)
    {
        _receiver = receiver;
        _faults = faults;
        _logger = logger;
    }

    /// <param name="peer">the pushing node's name, from its certificate</param>
    /// <param name="described">the peer as the log names it</param>
    /// <param name="abort">resets the connection (fault injection)</param>
    public async Task ServeAsync(Stream input, Stream output, string peer, string described, Action abort, CancellationToken cancellationToken)
    {
        try
        {
            while (await PushFrames.ReadAsync(input, cancellationToken).ConfigureAwait(false) is { } frame)
            {
                if (frame.Kind != PushFrameKind.Start)
                {
                    throw AgentException.InvalidArgument("a push begins with PushStart, naming the group and the checkpoint");
                }
                var start = PushStart.Parser.ParseFrom(frame.Header);
                await ReceiveAsync(input, output, start, peer, described, abort, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (AgentException e)
        {
            _logger.LogWarning("Refused a push from node {Peer}: {Reason}", described, e.Message);
            await RefuseAsync(input, output, e.Message).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidProtocolBufferException)
        {
            _logger.LogWarning("Refused a push from node {Peer}: {Reason}", described, e.Message);
            await RefuseAsync(input, output, $"not a push: {e.Message}").ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            _logger.LogInformation("Push connection from node {Peer} ended: {Reason}", described, AgentException.OneLine(e.Message));
        }
    }

    /// <summary>Receives one checkpoint and answers once it is committed.</summary>
    private async Task ReceiveAsync(Stream input, Stream output, PushStart start, string peer, string described, Action abort, CancellationToken cancellationToken)
    {
        using var incoming = await _receiver.BeginAsync(start.Group, start.Id, peer, described, start.Origin, cancellationToken).ConfigureAwait(false);
        // Chunks are checked and written on a task of their own while the next ones arrive.
        var writeBehind = new ReplicaWriteBehind(incoming, chunk =>
        {
            PushFrames.Release(chunk.Data);
            if (_faults.DropNow())
            {
                _logger.LogWarning("Fault injection: cutting the connection of the push of checkpoint {CheckpointId} of group {Group}", incoming.Id, incoming.Group);
                abort();
            }
        });
        await using (writeBehind.ConfigureAwait(false))
        {
            while (await PushFrames.ReadAsync(input, cancellationToken).ConfigureAwait(false) is { } frame)
            {
                switch (frame.Kind)
                {
                    case PushFrameKind.Chunk:
                        var chunk = Chunk.Parser.ParseFrom(frame.Header);
                        await writeBehind.AddAsync(new ReplicaChunk(chunk.File, chunk.Offset, frame.DataMemory, chunk.Crc32C), cancellationToken)
                            .ConfigureAwait(false);
                        break;
                    case PushFrameKind.Commit:
                        var commit = PushCommit.Parser.ParseFrom(frame.Header);
                        await writeBehind.CompleteAsync().ConfigureAwait(false);
                        var committed = incoming.Commit(commit.ManifestJson);
                        var reply = new PushReply { Id = incoming.Id, BytesReceived = incoming.BytesReceived, AlreadyHeld = committed is null };
                        await PushFrames.WriteAsync(output, PushFrameKind.Reply, reply, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);
                        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                        incoming.ApplyRetention(commit.Retention);
                        return;
                    default:
                        throw AgentException.InvalidArgument("a push holds one PushStart, then chunks, then PushCommit");
                }
            }
        }
        throw new IOException($"the push of checkpoint {incoming.Group}/{incoming.Id} ended before its commit; what arrived is kept");
    }

    /// <summary>
    /// Says why, then reads what the sender still sends until it closes (for a few seconds at most):
    /// closing with unread bytes would reset the connection, and the sender might lose the reason.
    /// </summary>
    private static async Task RefuseAsync(Stream input, Stream output, string detail)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await PushFrames.WriteAsync(output, PushFrameKind.Refused, new PushRefused { Detail = AgentException.OneLine(detail) }, ReadOnlyMemory<byte>.Empty, bounded.Token)
                .ConfigureAwait(false);
            await output.FlushAsync(bounded.Token).ConfigureAwait(false);
            var discard = new byte[64 << 10];
            while (await input.ReadAsync(discard, bounded.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The sender is gone, or did not close in time: nothing more to tell it.
        }
    }
}
