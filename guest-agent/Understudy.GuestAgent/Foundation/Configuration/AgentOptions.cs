using Understudy.GuestAgent.Foundation.Peers;

namespace Understudy.GuestAgent.Foundation.Configuration;

/// <summary>
/// The agent's settings as the services see them (through IOptions): what hactl's agent run
/// passes (Hosting copies it from the public AgentHostOptions) plus the protocol's fixed grace
/// periods, which tests may shorten.
/// </summary>
internal sealed class AgentOptions
{
    public const int DefaultFullEvery = 8;
    public const int DefaultChainLimitPercent = 50;
    public const int DefaultRetention = 3;
    public static readonly TimeSpan DefaultMigrationResolveTimeout = TimeSpan.FromSeconds(30);

    public string ListenSocket { get; set; } = "";
    public string StateDir { get; set; } = "";
    public string NativeDir { get; set; } = "";
    public string InterceptorPath { get; set; } = "";
    public TimeSpan PrepareTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// How long members get, with the group frozen, to capture their state (WRITE ... cow until
    /// CAPTURED); the writing that follows, with the group running, gets <see cref="WriteTimeout"/>.
    /// </summary>
    public TimeSpan CaptureTimeout { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan RestoreTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A granted fork/exec/spawn whose child never says HELLO stops blocking checkpoints after this.</summary>
    public TimeSpan RegistrationGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a launched application has to say HELLO.</summary>
    public TimeSpan LaunchRegistrationTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long us-init has to say READY.</summary>
    public TimeSpan InitStartTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long us-init gets to exit after QUIT before it is killed.</summary>
    public TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>At most this many incremental checkpoints follow a full one; 0: every checkpoint is full.</summary>
    public int FullEvery { get; set; } = DefaultFullEvery;

    /// <summary>The next checkpoint is full once the incremental ones since the last full one hold this percentage of its bytes.</summary>
    public int ChainLimitPercent { get; set; } = DefaultChainLimitPercent;

    /// <summary>
    /// Merge committed incremental checkpoints in the background. Off, they stay incremental
    /// until a restore merges them (tests use this to keep chains unmerged).
    /// </summary>
    public bool BackgroundMerges { get; set; } = true;

    /// <summary>
    /// At shutdown, leave the groups running for the next agent on the state directory to take
    /// up (an upgrade, a service restart). Off, a shutdown stops every group.
    /// </summary>
    public bool KeepGroups { get; set; }

    /// <summary>
    /// Committed checkpoints kept of a group without a policy (a policy's checkpoints.retention
    /// says it for its group); 0 keeps every one.
    /// </summary>
    public int Retention { get; set; } = DefaultRetention;

    /// <summary>This node's name in its cluster; null: no peers (no standby, no peer endpoint).</summary>
    public string? Node { get; set; }

    /// <summary>Directory of the cluster's credentials (ca.crt, NODE.crt, NODE.key).</summary>
    public string? ClusterDir { get; set; }

    /// <summary>IP:PORT of the peer endpoint; null: none.</summary>
    public string? PeerListen { get; set; }

    /// <summary>Peer nodes by name: IP:PORT.</summary>
    public IReadOnlyDictionary<string, string> Peers { get; set; } = new Dictionary<string, string>();

    /// <summary>Replication chunks: how many bytes of a file one message carries.</summary>
    public int ReplicationChunkBytes { get; set; } = 1 << 20;

    /// <summary>How long a primary waits before it tries an unreachable standby again.</summary>
    public TimeSpan ReplicationRetry { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A migration copies ahead of the freeze for at most this many rounds.</summary>
    public int MigrationMaxRounds { get; set; } = 8;

    /// <summary>A pre-copy round this small (bytes) is the last before the freeze.</summary>
    public long MigrationSmallEnoughBytes { get; set; } = 16L << 20;

    /// <summary>
    /// When the target's answer to a takeover is lost, how long the source keeps asking it whether
    /// the group runs there before it gives up, the group still frozen.
    /// </summary>
    public TimeSpan MigrationResolveTimeout { get; set; } = DefaultMigrationResolveTimeout;

    /// <summary>How long this agent waits on a silent peer (--peer-timeout): the deadlines of every peer connection.</summary>
    public PeerDeadlines PeerDeadlines { get; set; } = new(PeerDeadlines.DefaultTimeout);
}
