using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// Kestrel connection middleware for the API socket: like the member socket, it serves only
/// the agent's own user and root (SO_PEERCRED).
/// </summary>
internal static class PeerCredentialFilter
{
    public static Func<ConnectionDelegate, ConnectionDelegate> Create(ILogger logger) => next => async context =>
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            var peer = PeerCredentials.Of(socket);
            if (!peer.IsTrusted)
            {
                logger.LogWarning("Refused an API connection from pid {Pid}: uid {Uid} is neither the agent's nor root", peer.Pid, peer.Uid);
                context.Abort();
                return;
            }
        }
        await next(context).ConfigureAwait(false);
    };
}
