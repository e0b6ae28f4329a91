namespace Understudy.GuestAgent.Foundation.Peers;

/// <summary>
/// How long this agent waits on a silent peer, everywhere, from one setting (<c>--peer-timeout</c>):
/// a node that crashed or was cut off sends no reset, so every connection to a peer finds it dead
/// by its silence, after about <see cref="Timeout"/>. A shorter timeout finds a lost node sooner
/// and takes a slow one for lost sooner too.
/// </summary>
internal sealed record PeerDeadlines(TimeSpan Timeout)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>A TCP connection to a peer, and its TLS handshake on the calling side.</summary>
    public TimeSpan Connect => Timeout / 2;

    /// <summary>A gRPC call's connection is pinged after this much silence...</summary>
    public TimeSpan CallPingDelay => Timeout / 2;

    /// <summary>...and dropped when the ping goes unanswered this long.</summary>
    public TimeSpan CallPingTimeout => Timeout / 2;

    /// <summary>
    /// The serving end pings its callers too (a takeover's target must see its caller gone), more
    /// patiently than they ping it: the caller, which knows what the call is for, decides first.
    /// </summary>
    public TimeSpan ServePingDelay => Timeout;

    public TimeSpan ServePingTimeout => Timeout * 2;

    /// <summary>A TLS handshake on the peer endpoint.</summary>
    public TimeSpan Handshake => Timeout;

    /// <summary>A push connection's keepalive: probes after this much silence, one a second.</summary>
    public int KeepAliveIdleSeconds => Math.Max(1, (int)(Timeout.TotalSeconds / 2));

    /// <summary>Unanswered probes that end a push connection: the rest of the timeout, at least two.</summary>
    public int KeepAliveProbes => Math.Max(2, (int)Timeout.TotalSeconds - KeepAliveIdleSeconds);

    /// <summary>Data a push wrote that stays unacknowledged this long ends its connection (TCP_USER_TIMEOUT).</summary>
    public TimeSpan UnacknowledgedData => Timeout * 1.5;
}
