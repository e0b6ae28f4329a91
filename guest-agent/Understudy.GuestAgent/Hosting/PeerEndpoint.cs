using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Understudy.GuestAgent.Api.Peers;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Peers;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// The second Kestrel endpoint, on the node's address (<c>--peer-listen IP:PORT</c>), for the
/// other nodes' agents: HTTP/2 over TLS 1.3, and a client certificate signed by the cluster's CA is
/// required. A connection without one, or with another CA's, is refused in the handshake and
/// logged with its address; the calls it might make never reach a service. The same endpoint
/// serves push connections, which carry checkpoints (docs/protocol.md).
/// </summary>
internal static class PeerEndpoint
{
    public static void Listen(KestrelServerOptions kestrel, string address, ClusterCredentials credentials, PeerDeadlines deadlines, Serilog.ILogger logger)
    {
        if (!IPEndPoint.TryParse(address, out var endPoint))
        {
            throw AgentException.InvalidArgument($"--peer-listen '{address}' is not IP:PORT");
        }
        kestrel.Listen(endPoint, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            listen.UseHttps(new TlsHandshakeCallbackOptions
            {
                HandshakeTimeout = deadlines.Handshake,
                OnConnection = context => ValueTask.FromResult(ServerOptions(credentials, context.Connection.RemoteEndPoint, logger)),
            });
            listen.Use(next => connection => ServePushOrNext(connection, next, deadlines, kestrel.ApplicationServices));
        });
    }

    /// <summary>
    /// After the handshake: a connection that begins with the push magic is a push connection
    /// (<see cref="PushConnectionHandler"/>); any other goes on to HTTP/2 with its bytes unread.
    /// </summary>
    private static async Task ServePushOrNext(ConnectionContext connection, ConnectionDelegate next, PeerDeadlines deadlines, IServiceProvider services)
    {
        var input = connection.Transport.Input;
        var magicLength = PushFrames.Magic.Length;
        var read = await input.ReadAtLeastAsync(magicLength, connection.ConnectionClosed).ConfigureAwait(false);
        var isPush = read.Buffer.Length >= magicLength && read.Buffer.Slice(0, magicLength).ToArray().AsSpan().SequenceEqual(PushFrames.Magic);
        if (!isPush)
        {
            input.AdvanceTo(read.Buffer.Start);
            await next(connection).ConfigureAwait(false);
            return;
        }
        input.AdvanceTo(read.Buffer.GetPosition(magicLength));
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            PeerSockets.DetectDeadPeers(socket, deadlines);
        }
        var certificate = connection.Features.Get<ITlsConnectionFeature>()?.ClientCertificate;
        var peer = certificate is null ? "?" : ClusterCredentials.NodeOf(certificate);
        await services.GetRequiredService<PushConnectionHandler>().ServeAsync(
            input.AsStream(leaveOpen: true), connection.Transport.Output.AsStream(leaveOpen: true), peer,
            $"{peer} ({connection.RemoteEndPoint})", connection.Abort, connection.ConnectionClosed).ConfigureAwait(false);
    }

    private static SslServerAuthenticationOptions ServerOptions(ClusterCredentials credentials, EndPoint? remote, Serilog.ILogger logger) => new()
    {
        ServerCertificate = credentials.Own,
        ClientCertificateRequired = true,
        EnabledSslProtocols = SslProtocols.Tls13,
        ApplicationProtocols = [SslApplicationProtocol.Http2],
        CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (credentials.Problem(certificate, expectedNode: null) is { } problem)
            {
                logger.Warning("Refused a peer connection from {Address}: {Problem}; it may neither push nor read images", remote?.ToString() ?? "?", problem);
                return false;
            }
            return true;
        },
    };
}
