using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.GuestAgent.Foundation.Peers;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>
/// The sending end of a push connection (<see cref="PushFrames"/>) to a node's peer endpoint:
/// the same TLS 1.3 with this node's certificate as the gRPC calls, the node's own checked
/// against the cluster's CA and its name. One connection per checkpoint sent.
/// </summary>
internal static class PushClient
{
    /// <returns>whether the node had the checkpoint already</returns>
    /// <exception cref="PeerRefusedException">The node answered no, with its reason.</exception>
    /// <exception cref="IOException">The connection failed or broke (also a failed handshake, as <see cref="AuthenticationException"/>).</exception>
    public static async Task<bool> PushAsync(
        IPEndPoint endPoint, SslClientAuthenticationOptions tls, PeerDeadlines deadlines, PushStart start, IAsyncEnumerable<ReplicaChunk> chunks, Func<PushCommit> commit,
        CancellationToken cancellationToken)
    {
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        PeerSockets.DetectDeadPeers(socket, deadlines);
        using (var connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            connecting.CancelAfter(deadlines.Connect);
            try
            {
                await socket.ConnectAsync(endPoint, connecting.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new IOException("no answer, the connection timed out (the node is down or cut off from this one)");
            }
        }
        await using var tlsStream = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        await tlsStream.AuthenticateAsClientAsync(tls, cancellationToken).ConfigureAwait(false);
        await tlsStream.WriteAsync(PushFrames.Magic.ToArray(), cancellationToken).ConfigureAwait(false);
        await PushFrames.WriteAsync(tlsStream, PushFrameKind.Start, start, ReadOnlyMemory<byte>.Empty, cancellationToken).ConfigureAwait(false);

        // The answer is read while chunks are written: a refusal may come before the commit (a
        // damaged chunk), and then it says why the writing failed.
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var answer = ReadAnswerAsync(tlsStream, stopWriting, cancellationToken);
        try
        {
            await foreach (var chunk in chunks.WithCancellation(stopWriting.Token).ConfigureAwait(false))
            {
                var header = new Chunk { File = chunk.File, Offset = chunk.Offset, Crc32C = chunk.Crc32c };
                await PushFrames.WriteAsync(tlsStream, PushFrameKind.Chunk, header, chunk.Data, stopWriting.Token).ConfigureAwait(false);
            }
            await PushFrames.WriteAsync(tlsStream, PushFrameKind.Commit, commit(), ReadOnlyMemory<byte>.Empty, stopWriting.Token).ConfigureAwait(false);
            await tlsStream.FlushAsync(stopWriting.Token).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // The node may have answered first (a refusal): then its answer says why; if it says
            // nothing soon, the connection broke and the write's failure says so.
            if (await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None)).ConfigureAwait(false) != answer)
            {
                throw;
            }
        }
        return (await answer.ConfigureAwait(false)).AlreadyHeld;
    }

    private static async Task<PushReply> ReadAnswerAsync(Stream stream, CancellationTokenSource stopWriting, CancellationToken cancellationToken)
    {
        try
        {
            var frame = await PushFrames.ReadAsync(stream, cancellationToken).ConfigureAwait(false);
            return frame switch
            {
                { Kind: PushFrameKind.Reply } => PushReply.Parser.ParseFrom(frame.Header),
                { Kind: PushFrameKind.Refused } => throw new PeerRefusedException(PushRefused.Parser.ParseFrom(frame.Header).Detail),
                null => throw new IOException("the node closed the connection without an answer"),
                _ => throw new IOException($"the node answered with a frame of kind {frame.Kind}, not an answer"),
            };
        }
        catch (InvalidDataException e)
        {
            throw new IOException($"the node's answer is not valid: {e.Message}", e);
        }
        finally
        {
            await stopWriting.CancelAsync().ConfigureAwait(false);
        }
    }
}
