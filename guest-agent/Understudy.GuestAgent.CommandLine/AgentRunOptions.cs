using System.CommandLine;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>
/// The options that run a guest agent: understudy-agent's own, which <c>hactl agent run</c>
/// offers as well and passes on (<see cref="AgentRunSettings.ToArguments"/>).
/// </summary>
public sealed class AgentRunOptions
{
    public const int DefaultFullEvery = 8;
    public const int DefaultChainLimitPercent = 50;
    public const int DefaultRetention = 3;
    public static readonly TimeSpan DefaultPeerTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultMigrationResolveTimeout = TimeSpan.FromSeconds(30);

    /// <param name="nativeDir">the program's --native-dir, whose default names the program (<see cref="NativeDirOption"/>).</param>
    public AgentRunOptions(Option<string?> nativeDir)
    {
        NativeDir = nativeDir;
    }

    public Option<string> Listen { get; } = CreateListen();

    public Option<string> StateDir { get; } = new("--state-dir")
    {
        Description = "Directory for sockets, logs and checkpoints (created 0700 if missing)",
        HelpName = "DIR",
        Required = true,
    };

    public Option<bool> JsonLogs { get; } = new("--json-logs") { Description = "Write the agent's log as one JSON object per line" };

    public Option<string?> NativeDir { get; }

    public Option<string?> Interceptor { get; } = new("--interceptor")
    {
        Description = "Path of libunderstudy.so (default: NATIVE_DIR/../lib/libunderstudy.so)",
        HelpName = "PATH",
    };

    public Option<bool> Json { get; } = new("--json") { Description = "Same as --json-logs (the agent prints a log, not one document)" };

    public Option<int> FullEvery { get; } = Count("--full-every",
        "At most N incremental checkpoints follow a full one; 0 makes every checkpoint full", "N", DefaultFullEvery, minimum: 0);

    public Option<int> ChainLimit { get; } = Count("--chain-limit",
        "The next checkpoint is full once the incremental ones since the last full one hold PERCENT of its size", "PERCENT",
        DefaultChainLimitPercent, minimum: 1);

    public Option<bool> NoBackgroundMerge { get; } = new("--no-background-merge")
    {
        Description = "Leave incremental checkpoints as they are (restores read their chains unmerged; default: merge each one into full images in the background)",
    };

    public Option<bool> KeepGroups { get; } = new("--keep-groups")
    {
        Description = "On SIGINT or SIGTERM, leave the groups running for the next agent on this state directory to take up " +
                      "(an upgrade, a service restart); default: stop them",
    };

    public Option<int> Retention { get; } = Count("--retention",
        "Committed checkpoints kept of a group without a policy, with every checkpoint they need; a policy's checkpoints.retention " +
        "overrides it; 0 keeps every one", "N", DefaultRetention, minimum: 0);

    public Option<string?> Node { get; } = new("--node")
    {
        Description = "This node's name in its cluster: its certificate is CLUSTER_DIR/NAME.crt and NAME.key (hactl cluster init)",
        HelpName = "NAME",
    };

    public Option<string?> Cluster { get; } = new("--cluster")
    {
        Description = "Directory of the cluster's credentials: ca.crt and this node's certificate and key (hactl cluster init)",
        HelpName = "DIR",
    };

    public Option<string?> PeerListen { get; } = new("--peer-listen")
    {
        Description = "Serve the other nodes (a primary streaming checkpoints here) on this address, over mutual TLS",
        HelpName = "IP:PORT",
    };

    public Option<string[]> Peer { get; } = new("--peer")
    {
        Description = "A node this agent may stream checkpoints to (a group's standby); repeat for each",
        HelpName = "NAME=IP:PORT",
        AllowMultipleArgumentsPerToken = false,
        DefaultValueFactory = _ => [],
    };

    public Option<TimeSpan?> PeerTimeout { get; } = PeerTimeoutOption("this agent");

    public Option<TimeSpan?> MigrationResolveTimeout { get; } = MigrationResolveTimeoutOption("this agent");

    /// <summary>Every option, in the order of the help.</summary>
    public IReadOnlyList<Option> All =>
        [Listen, StateDir, JsonLogs, NativeDir, Interceptor, Json, FullEvery, ChainLimit, NoBackgroundMerge, KeepGroups, Retention, Node, Cluster, PeerListen, Peer,
         PeerTimeout, MigrationResolveTimeout];

    /// <param name="ownDirectory">what the default is, for example "hactl's own directory".</param>
    public static Option<string?> NativeDirOption(string ownDirectory) => new("--native-dir")
    {
        Description = $"Directory of the native programs (us-init, us-probe, ...); default: ${NativeLayout.NativeDirVariable}, else {ownDirectory}",
        HelpName = "DIR",
    };

    /// <summary>The parsed options, with every default resolved; call it on a command line without errors.</summary>
    public AgentRunSettings Read(ParseResult parse)
    {
        UnixAddress.TryParse(parse.GetRequiredValue(Listen), out var socket, out _);
        var nativeDir = NativeLayout.NativeDir(parse.GetValue(NativeDir));
        return new AgentRunSettings(
            ListenSocket: socket!,
            StateDir: Path.GetFullPath(parse.GetRequiredValue(StateDir)),
            NativeDir: nativeDir,
            InterceptorPath: NativeLayout.Interceptor(parse.GetValue(Interceptor), nativeDir),
            JsonLogs: parse.GetValue(JsonLogs) || parse.GetValue(Json),
            FullEvery: parse.GetValue(FullEvery),
            ChainLimitPercent: parse.GetValue(ChainLimit),
            BackgroundMerges: !parse.GetValue(NoBackgroundMerge),
            KeepGroups: parse.GetValue(KeepGroups),
            Retention: parse.GetValue(Retention),
            Peers: ReadPeers(parse),
            PeerTimeout: parse.GetValue(PeerTimeout) ?? DefaultPeerTimeout,
            MigrationResolveTimeout: parse.GetValue(MigrationResolveTimeout) ?? DefaultMigrationResolveTimeout);
    }

    /// <summary>The peer settings, or null when none of the peer options is given.</summary>
    private PeerSettings? ReadPeers(ParseResult parse)
    {
        var node = parse.GetValue(Node);
        var cluster = parse.GetValue(Cluster);
        var listen = parse.GetValue(PeerListen);
        var peers = parse.GetValue(Peer) ?? [];
        if (node is null && cluster is null && listen is null && peers.Length == 0)
        {
            return null;
        }
        return new PeerSettings(node!, Path.GetFullPath(cluster!), listen,
            peers.Select(p => PeerNode.TryParse(p, out var peer, out _) ? peer : null).OfType<PeerNode>().ToList());
    }

    /// <summary>Checks the peer options together: a node name and a cluster directory go with any of them.</summary>
    public void AddPeerValidators(Command command)
    {
        command.Validators.Add(result =>
        {
            var node = result.GetValue(Node);
            var cluster = result.GetValue(Cluster);
            var listen = result.GetValue(PeerListen);
            var peers = result.GetValue(Peer) ?? [];
            if (node is null && cluster is null && listen is null && peers.Length == 0)
            {
                return;
            }
            if (node is null || cluster is null)
            {
                result.AddError("--node and --cluster go together with --peer-listen and --peer: the node's certificate is CLUSTER_DIR/NODE.crt");
                return;
            }
            if (PeerNode.NameProblem(node) is { } problem)
            {
                result.AddError($"--node: {problem}");
            }
            if (listen is not null && !PeerAddress.TryParse(listen, out _, out var why))
            {
                result.AddError($"--peer-listen '{listen}' is not an address: {why}");
            }
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var text in peers)
            {
                if (!PeerNode.TryParse(text, out var peer, out var peerWhy))
                {
                    result.AddError($"--peer '{text}' is not a peer: {peerWhy}");
                }
                else if (!names.Add(peer.Name) || peer.Name == node)
                {
                    result.AddError($"--peer '{text}': node {peer.Name} is {(peer.Name == node ? "this node itself" : "given twice")}");
                }
            }
        });
    }

    private static Option<string> CreateListen()
    {
        var listen = new Option<string>("--listen")
        {
            Description = "Serve the gRPC API on this Unix socket",
            HelpName = "unix:PATH",
            Required = true,
        };
        listen.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (!UnixAddress.TryParse(value, out _, out var why))
            {
                result.AddError($"--listen '{value}' is not a listen address: {why}");
            }
        });
        return listen;
    }

    /// <param name="who">whose setting it is, for its description: "this agent", "each node's agent".</param>
    public static Option<TimeSpan?> PeerTimeoutOption(string who) => Duration("--peer-timeout",
        "How long a peer may stay silent (no answer to a connection attempt, to the pings of a call or to a push's keepalives) " +
        $"before {who} takes the link to it for broken; a call to a node that is down fails after about this long",
        DefaultPeerTimeout, TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(10));

    /// <param name="who">whose setting it is, for its description: "this agent", "each node's agent".</param>
    public static Option<TimeSpan?> MigrationResolveTimeoutOption(string who) => Duration("--migration-resolve-timeout",
        $"When the answer to a migration's takeover is lost, how long {who}, as the source, keeps asking the target whether it " +
        "runs the group before 'migrate' fails; the group stays frozen at the source until the target answers",
        DefaultMigrationResolveTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10));

    /// <summary>A duration from <paramref name="minimum"/> to <paramref name="maximum"/>; null when not given (the help shows the default as a duration, not as a TimeSpan).</summary>
    private static Option<TimeSpan?> Duration(string name, string description, TimeSpan defaultValue, TimeSpan minimum, TimeSpan maximum)
    {
        var parse = WholeDuration.Between(name, minimum, maximum);
        return new Option<TimeSpan?>(name)
        {
            Description = $"{description} [default: {WholeDuration.Format(defaultValue)}]",
            HelpName = "DURATION",
            CustomParser = result => parse(result),
        };
    }

    /// <summary>A whole number of at least <paramref name="minimum"/>.</summary>
    private static Option<int> Count(string name, string description, string helpName, int defaultValue, int minimum)
    {
        return new Option<int>(name)
        {
            Description = description,
            HelpName = helpName,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = WholeNumber.AtLeast(name, minimum),
        };
    }
}
