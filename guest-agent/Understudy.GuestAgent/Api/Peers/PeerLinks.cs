using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Understudy.GuestAgent.Foundation.Errors;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Peers;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>
/// The links to the agent's peers (<c>--peer NAME=IP:PORT</c>), over TLS 1.3 with this node's
/// certificate, the node's own certificate checked against the cluster's CA and its name: one gRPC
/// channel per node for the calls, and a push connection per checkpoint sent
/// (<see cref="PushClient"/>), which carries the files at the link's speed.
/// </summary>
internal sealed class PeerLinks : IStandbyLinks, IDisposable
{
    private const int WindowBytes = 8 << 20;
    private readonly AgentOptions _options;
    private readonly ClusterMembership _membership;
    private readonly ILogger<PeerLinks> _logger;
    private readonly ConcurrentDictionary<string, Link> _links = new(StringComparer.Ordinal);

    public PeerLinks(IOptions<AgentOptions> options, ClusterMembership membership, ILogger<PeerLinks> logger)
    {
        _options = options.Value;
        _membership = membership;
        _logger = logger;
    }

    public IStandbyLink To(string node)
    {
        if (!_options.Peers.TryGetValue(node, out var address))
        {
            throw new StandbyLinkException($"node {node} is not a peer of this agent; add --peer {node}=IP:PORT to its options");
        }
        var credentials = _membership.Credentials
            ?? throw new StandbyLinkException("this agent has no cluster credentials; start it with --node NAME --cluster DIR");
        // Each transport gets options of its own: the HTTP handler adds its protocols to them.
        return _links.GetOrAdd(node, n => new Link(n, address, Channel(address, Tls(n, address, credentials), _options.PeerDeadlines), Tls(n, address, credentials),
            _options.PeerDeadlines));
    }

    private SslClientAuthenticationOptions Tls(string node, string address, ClusterCredentials credentials) =>
        credentials.ClientOptions(node, problem => _logger.LogWarning("Refused node {Node} at {Address}: {Problem}", node, address, problem));

    private static GrpcChannel Channel(string address, SslClientAuthenticationOptions tls, PeerDeadlines deadlines)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = tls,
            ConnectTimeout = deadlines.Connect,
            KeepAlivePingDelay = deadlines.CallPingDelay,
            KeepAlivePingTimeout = deadlines.CallPingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            InitialHttp2StreamWindowSize = WindowBytes,
            EnableMultipleHttp2Connections = false,
        };
        return GrpcChannel.ForAddress($"https://{address}", new GrpcChannelOptions
        {
            HttpHandler = handler,
            MaxReceiveMessageSize = 16 << 20,
            MaxSendMessageSize = 16 << 20,
        });
    }

    public void Dispose()
    {
        foreach (var link in _links.Values)
        {
            link.Channel.Dispose();
        }
    }

    private sealed class Link(string node, string address, GrpcChannel channel, SslClientAuthenticationOptions pushTls, PeerDeadlines deadlines) : IStandbyLink
    {
        private readonly Replication.ReplicationClient _client = new(channel);
        private readonly Migration.MigrationClient _migration = new(channel);

        public GrpcChannel Channel => channel;

        public async Task<StandbyHoldings> HoldingsAsync(string group, CancellationToken cancellationToken)
        {
            var reply = await Call(() => _client.HoldingsAsync(new HoldingsRequest { Group = group }, cancellationToken: cancellationToken).ResponseAsync, cancellationToken)
                .ConfigureAwait(false);
            return new StandbyHoldings(
                reply.Committed.ToList(),
                reply.Receiving.ToDictionary(
                    p => p.Id, p => new PartialCopy(p.Origin, p.Files.ToDictionary(f => f.Name, f => f.Length, StringComparer.Ordinal)),
                    StringComparer.Ordinal));
        }

        public Task<bool> PushAsync(
            string group, string id, string origin, IAsyncEnumerable<ReplicaChunk> chunks, Func<string> manifestJson, int retention,
            CancellationToken cancellationToken) =>
            Call(() => PushClient.PushAsync(
                IPEndPoint.Parse(address), pushTls, deadlines, new PushStart { Group = group, Id = id, Sender = node, Origin = origin }, chunks,
                () => new PushCommit { ManifestJson = manifestJson(), Retention = retention }, cancellationToken), cancellationToken);

        public Task PrepareAsync(string group, string id, string? policyText, CancellationToken cancellationToken) =>
            Call(async () => await _migration.PrepareAsync(new PrepareRequest { Group = group, Id = id, Policy = policyText ?? "" }, cancellationToken: cancellationToken)
                .ResponseAsync.ConfigureAwait(false), cancellationToken);

        public Task<TakeOverResult> TakeOverAsync(string group, string id, string? policyText, CancellationToken cancellationToken) =>
            Call(async () =>
            {
                var request = new TakeOverRequest { Group = group, Id = id, Policy = policyText ?? "" };
                var reply = await _migration.TakeOverAsync(request, cancellationToken: cancellationToken)
                    .ResponseAsync.ConfigureAwait(false);
                return new TakeOverResult(reply.Members, reply.DurationMs, reply.Standby.Length == 0 ? null : reply.Standby);
            }, cancellationToken);

        public Task<bool> AbandonAsync(string group, string id, CancellationToken cancellationToken) =>
            Call(async () =>
            {
                var reply = await _migration.AbandonAsync(new AbandonRequest { Group = group, Id = id }, cancellationToken: cancellationToken)
                    .ResponseAsync.ConfigureAwait(false);
                return reply.Running;
            }, cancellationToken);

        /// <param name="cancellationToken">the caller's: a call it cancelled ends as cancelled; one the link cancelled is a broken link</param>
        private async Task<T> Call<T>(Func<Task<T>> call, CancellationToken cancellationToken)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (RpcException e) when (e.Status.DebugException is null && AnsweredCodes.Contains(e.StatusCode))
            {
                // The node's own answer (no transport failure underneath): what it refused, in its words.
                throw new PeerRefusedException($"node {node}: {AgentException.OneLine(e.Status.Detail)}", e);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested)
            {
                // This side gave up (its caller, or a fault of the group that stops its migration): no link failure.
                throw new OperationCanceledException($"call to node {node} cancelled", e, cancellationToken);
            }
            catch (RpcException e)
            {
                var detail = e.Status.DebugException is { } inner ? Reason(inner) : e.Status.Detail;
                throw new StandbyLinkException($"node {node} at {address}: {AgentException.OneLine(detail)}", e);
            }
            catch (PeerRefusedException e)
            {
                throw new PeerRefusedException($"node {node}: {AgentException.OneLine(e.Message)}", e);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or InvalidOperationException or AuthenticationException or SocketException)
            {
                throw new StandbyLinkException($"node {node} at {address}: {AgentException.OneLine(Reason(e))}", e);
            }
        }

        // The codes the agent's own error mapping answers with (ErrorMapping): anything else, or
        // any failure with a transport exception underneath, is a broken link, not an answer.
        private static readonly HashSet<StatusCode> AnsweredCodes =
        [
            StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.FailedPrecondition, StatusCode.Aborted,
            StatusCode.PermissionDenied, StatusCode.AlreadyExists, StatusCode.Unavailable, StatusCode.ResourceExhausted,
        ];

        /// <summary>
        /// Why the link failed, from the innermost exception: a connection that timed out (no answer to
        /// a connect or to a keepalive ping: the node is down or cut off) says so rather than "The
        /// operation was canceled".
        /// </summary>
        private static string Reason(Exception e)
        {
            var innermost = e;
            while (innermost.InnerException is { } inner)
            {
                innermost = inner;
            }
            return innermost is OperationCanceledException or TimeoutException
                ? "no answer, the connection timed out (the node is down or cut off from this one)"
                : innermost.Message;
        }
    }
}
