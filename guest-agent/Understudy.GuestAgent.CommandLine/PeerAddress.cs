using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>A node's address for its peers: <c>IP:PORT</c> (an IPv6 address in brackets).</summary>
public static class PeerAddress
{
    /// <summary>Parses <c>IP:PORT</c>; host names are not accepted (the cluster's nodes are named by their certificates, reached by address).</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out IPEndPoint? endPoint, [NotNullWhen(false)] out string? why)
    {
        endPoint = null;
        if (!IPEndPoint.TryParse(text, out var parsed) || parsed.Port == 0 || !text.Contains(':', StringComparison.Ordinal)
            || text.EndsWith(']'))
        {
            why = "expected IP:PORT, for example 127.0.0.1:7400 or [::1]:7400, with a port from 1 to 65535";
            return false;
        }
        endPoint = parsed;
        why = null;
        return true;
    }
}

/// <summary>A peer of the agent on the command line: <c>NAME=IP:PORT</c>.</summary>
public sealed record PeerNode(string Name, string Address)
{
    /// <summary>A node name: what its certificate's common name says (hactl cluster init), letters, digits, '-' and '.'.</summary>
    public static string? NameProblem(string name) =>
        name.Length is 0 or > 63 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.') || name[0] is '-' or '.'
            ? $"node name '{name}' is not valid: 1 to 63 letters, digits, '-' or '.', not starting with '-' or '.'"
            : null;

    public static bool TryParse(string text, [NotNullWhen(true)] out PeerNode? peer, [NotNullWhen(false)] out string? why)
    {
        peer = null;
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            why = "expected NAME=IP:PORT, for example node-b=127.0.0.1:7401";
            return false;
        }
        var name = text[..equals];
        if (NameProblem(name) is { } problem)
        {
            why = problem;
            return false;
        }
        if (!PeerAddress.TryParse(text[(equals + 1)..], out _, out why))
        {
            return false;
        }
        peer = new PeerNode(name, text[(equals + 1)..]);
        return true;
    }

    public override string ToString() => $"{Name}={Address}";
}

/// <summary>
/// How the agent meets the other nodes of its cluster: its own name, the directory of the cluster's
/// credentials (hactl cluster init), the address it listens on for its peers, and its peers.
/// </summary>
/// <param name="Listen">IP:PORT of the peer endpoint; null: this agent serves no peer (it may still push to one)</param>
public sealed record PeerSettings(string Node, string ClusterDir, string? Listen, IReadOnlyList<PeerNode> Peers)
{
    public bool Equals(PeerSettings? other) =>
        other is not null && Node == other.Node && ClusterDir == other.ClusterDir && Listen == other.Listen && Peers.SequenceEqual(other.Peers);

    public override int GetHashCode() => HashCode.Combine(Node, ClusterDir, Listen, Peers.Count);
}
