using Understudy.GuestAgent.CommandLine;

namespace Understudy.Hactl.Lab;

/// <summary>
/// How a node's guest agent runs: the one place that says it. A new agent option for lab nodes
/// (a peer listener on the node's address, its peers, credentials) is added here.
/// </summary>
public static class NodeAgent
{
    public static AgentRunSettings Settings(LabLayout layout, LabNodeState node, string nativeDir) => new(
        ListenSocket: layout.AgentSocket(node.Name),
        StateDir: layout.NodeStateDir(node.Name),
        NativeDir: nativeDir,
        InterceptorPath: NativeLayout.Interceptor(null, nativeDir),
        JsonLogs: false,
        FullEvery: AgentRunOptions.DefaultFullEvery,
        ChainLimitPercent: AgentRunOptions.DefaultChainLimitPercent,
        BackgroundMerges: true);

    /// <summary>The agent's program and arguments, run inside the node by us-lab.</summary>
    public static IReadOnlyList<string> CommandLine(LabLayout layout, LabNodeState node, string nativeDir) =>
        [NativeLayout.Agent(nativeDir), .. Settings(layout, node, nativeDir).ToArguments()];
}
