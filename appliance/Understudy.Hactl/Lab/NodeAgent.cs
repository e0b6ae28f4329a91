using Understudy.GuestAgent.CommandLine;

namespace Understudy.Hactl.Lab;

/// <summary>
/// How a node's guest agent runs: the one place that says it, for <c>lab up</c>, <c>lab start</c>
/// and <c>lab restart-agent</c>, with the timeouts given to <c>lab up</c>. Each node is a member of
/// the lab's cluster: it serves its peers on its own address (<see cref="LabLayout.PeerAddress"/>)
/// with its credentials in DIR/cluster, and knows every other node of the lab as a peer.
/// </summary>
public static class NodeAgent
{
    public static AgentRunSettings Settings(LabLayout layout, LabState lab, LabNodeState node, string nativeDir) => new(
        ListenSocket: layout.AgentSocket(node.Name),
        StateDir: layout.NodeStateDir(node.Name),
        NativeDir: nativeDir,
        InterceptorPath: NativeLayout.Interceptor(null, nativeDir),
        JsonLogs: false,
        FullEvery: AgentRunOptions.DefaultFullEvery,
        ChainLimitPercent: AgentRunOptions.DefaultChainLimitPercent,
        BackgroundMerges: true,
        Peers: new PeerSettings(node.Name, layout.ClusterDir, LabLayout.PeerAddress(node),
            lab.Nodes.Where(n => n.Name != node.Name).Select(n => new PeerNode(n.Name, LabLayout.PeerAddress(n))).ToList()),
        PeerTimeout: lab.PeerTimeout,
        MigrationResolveTimeout: lab.MigrationResolveTimeout);

    /// <summary>The agent's program and arguments, run inside the node by us-lab.</summary>
    public static IReadOnlyList<string> CommandLine(LabLayout layout, LabState lab, LabNodeState node, string nativeDir) =>
        [NativeLayout.Agent(nativeDir), .. Settings(layout, lab, node, nativeDir).ToArguments()];
}
