using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>Gives meaning to what a member connection receives.</summary>
internal interface IMemberMessageHandler
{
    /// <summary>Called on the read loop, in order; must not block (long waits go through TrackRequest).</summary>
    void OnMessage(MemberConnection connection, MemberMessage message);

    /// <summary>Called once, after the connection ended and its waiting requests finished.</summary>
    Task OnDisconnectedAsync(MemberConnection connection);
}
