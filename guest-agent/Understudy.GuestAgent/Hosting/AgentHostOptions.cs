namespace Understudy.GuestAgent;

/// <summary>How <see cref="AgentHost"/> runs a node's guest agent.</summary>
public sealed class AgentHostOptions
{
    /// <summary>Path of the Unix socket that serves the gRPC API (hactl's <c>--listen unix:PATH</c>).</summary>
    public required string ListenSocket { get; init; }

    /// <summary>The state directory (docs/protocol.md, "State directory"); created 0700 if missing.</summary>
    public required string StateDir { get; init; }

    /// <summary>Directory that holds <c>us-init</c> and <c>us-restorer</c>.</summary>
    public required string NativeDir { get; init; }

    /// <summary>Absolute path of <c>libunderstudy.so</c>.</summary>
    public required string InterceptorPath { get; init; }

    /// <summary>How long members get to answer PREPARE (and RESUME/ABORT), and how long a checkpoint waits for registrations in flight.</summary>
    public TimeSpan PrepareTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long members get to write their images once the group runs again (WRITTEN).</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How long members get, with the group frozen, to capture their state (CAPTURED).</summary>
    public TimeSpan CaptureTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a restore may take until every member of the checkpoint said hello again.</summary>
    public TimeSpan RestoreTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Log compact JSON (one object per line) instead of text.</summary>
    public bool JsonLogs { get; init; }

    public const int DefaultFullEvery = Foundation.Configuration.AgentOptions.DefaultFullEvery;
    public const int DefaultChainLimitPercent = Foundation.Configuration.AgentOptions.DefaultChainLimitPercent;
    public const int DefaultRetention = Foundation.Configuration.AgentOptions.DefaultRetention;

    /// <summary>
    /// At most this many incremental checkpoints follow a full one (then the next is full);
    /// 0 makes every checkpoint full.
    /// </summary>
    public int FullEvery { get; init; } = DefaultFullEvery;

    /// <summary>
    /// The next checkpoint is full once the incremental checkpoints since the last full one
    /// together hold this percentage of the full one's bytes.
    /// </summary>
    public int ChainLimitPercent { get; init; } = DefaultChainLimitPercent;

    /// <summary>
    /// Merge committed incremental checkpoints into full images in the background. Off, they
    /// stay incremental until a restore merges them.
    /// </summary>
    public bool BackgroundMerges { get; init; } = true;

    /// <summary>
    /// At shutdown, leave the groups running (their us-init outlives the agent) for the next
    /// agent on the state directory to take up. Off, a shutdown stops every group.
    /// </summary>
    public bool KeepGroups { get; init; }

    /// <summary>Committed checkpoints kept of a group without a policy; 0 keeps every one.</summary>
    public int Retention { get; init; } = DefaultRetention;

    /// <summary>This node's name in its cluster (its certificate's common name); null: the agent has no peers.</summary>
    public string? Node { get; init; }

    /// <summary>Directory of the cluster's credentials: ca.crt, NODE.crt and NODE.key (hactl cluster init).</summary>
    public string? ClusterDir { get; init; }

    /// <summary>IP:PORT where the agent serves its peers (mutual TLS); null: it serves none.</summary>
    public string? PeerListen { get; init; }

    /// <summary>The nodes this agent may stream a group's checkpoints to, by name: IP:PORT.</summary>
    public IReadOnlyDictionary<string, string> Peers { get; init; } = new Dictionary<string, string>();

    /// <summary>How long a peer may stay silent before the link to it counts as broken (every peer deadline follows from it).</summary>
    public TimeSpan PeerTimeout { get; init; } = Foundation.Peers.PeerDeadlines.DefaultTimeout;

    /// <summary>When a takeover's answer is lost, how long the source keeps asking the target whether it runs the group.</summary>
    public TimeSpan MigrationResolveTimeout { get; init; } = Foundation.Configuration.AgentOptions.DefaultMigrationResolveTimeout;
}
