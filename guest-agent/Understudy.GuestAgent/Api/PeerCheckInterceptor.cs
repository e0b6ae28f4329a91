using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// The API serves only the agent's own user and root, as the member socket does
/// (docs/protocol.md): anyone else could freeze or read the memory of the group's processes. A
/// call from another user is refused with PermissionDenied and one line saying who may call.
/// A connection whose credentials are unknown is refused too (the peer endpoint's TCP connections:
/// the local API is not served there). The peer service is served to nodes of the cluster alone.
/// </summary>
internal sealed class PeerCheckInterceptor(ILogger<PeerCheckInterceptor> logger) : Interceptor
{
    private const string PeerServicePrefix = "/understudy.peer.v1.";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        // Agent to agent: the peer endpoint's TLS handshake admitted only certificates of the
        // cluster's CA; the Unix socket has no certificate, so peer calls are refused there.
        if (context.Method.StartsWith(PeerServicePrefix, StringComparison.Ordinal))
        {
            if (context.GetHttpContext().Connection.ClientCertificate is not null)
            {
                return;
            }
            logger.LogWarning("Refused a peer call {Method} without a cluster certificate", context.Method);
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                "peer calls are served on the agent's --peer-listen address only, to nodes of its cluster"));
        }
        object? value = null;
        context.GetHttpContext().Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(typeof(PeerCredentials), out value);
        if (value is PeerCredentials { IsTrusted: true })
        {
            return;
        }
        var who = value is PeerCredentials peer ? $"uid {peer.Uid} (pid {peer.Pid})" : "a process whose credentials are unknown";
        logger.LogWarning("Refused an API call {Method} from {Who}", context.Method, who);
        throw new RpcException(new Status(StatusCode.PermissionDenied,
            $"{who} may not use this agent: only root and uid {Libc.EffectiveUserId}, the agent's user, may; run hactl as one of them"));
    }
}
