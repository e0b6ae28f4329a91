using Understudy.GuestAgent.Foundation.Configuration;

namespace Understudy.GuestAgent.Foundation.Peers;

/// <summary>
/// This agent's place in its cluster: its node name and credentials, loaded once at start
/// (<see cref="ClusterCredentials.Load"/>), or none when the agent runs without peers.
/// </summary>
internal sealed class ClusterMembership : IDisposable
{
    private ClusterMembership(ClusterCredentials? credentials) => Credentials = credentials;

    public ClusterCredentials? Credentials { get; }

    /// <exception cref="Errors.AgentException">The credentials cannot be loaded; one line.</exception>
    public static ClusterMembership Load(AgentOptions options) =>
        new(options is { Node: { } node, ClusterDir: { } dir } ? ClusterCredentials.Load(dir, node) : null);

    public void Dispose() => Credentials?.Dispose();
}
