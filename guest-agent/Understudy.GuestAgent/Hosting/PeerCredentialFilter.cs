using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// Kestrel connection middleware for the API socket: notes who is at the other end
/// (SO_PEERCRED), for <see cref="Api.PeerCheckInterceptor"/> to refuse every call of a user
/// other than the agent's own and root. Refusing the calls, rather than dropping the
/// connection, lets the client say why it was refused.
/// </summary>
internal static class PeerCredentialFilter
{
    public static Func<ConnectionDelegate, ConnectionDelegate> Create() => next => context =>
    {
        if (context.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            context.Items[typeof(PeerCredentials)] = PeerCredentials.Of(socket);
        }
        return next(context);
    };
}
