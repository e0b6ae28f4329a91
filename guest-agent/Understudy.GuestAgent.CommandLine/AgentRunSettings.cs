using System.Globalization;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>How to run a guest agent, as read from <see cref="AgentRunOptions"/>: paths absolute, defaults resolved.</summary>
public sealed record AgentRunSettings(
    string ListenSocket,
    string StateDir,
    string NativeDir,
    string InterceptorPath,
    bool JsonLogs,
    int FullEvery,
    int ChainLimitPercent,
    bool BackgroundMerges,
    bool KeepGroups = false,
    int Retention = AgentRunOptions.DefaultRetention,
    PeerSettings? Peers = null,
    TimeSpan? PeerTimeout = null,
    TimeSpan? MigrationResolveTimeout = null)
{
    /// <summary>understudy-agent's arguments for these settings, every one spelled out (no default left to the agent).</summary>
    public IReadOnlyList<string> ToArguments()
    {
        List<string> args =
        [
            "--listen", UnixAddress.Scheme + ListenSocket,
            "--state-dir", StateDir,
            "--native-dir", NativeDir,
            "--interceptor", InterceptorPath,
            "--full-every", FullEvery.ToString(CultureInfo.InvariantCulture),
            "--chain-limit", ChainLimitPercent.ToString(CultureInfo.InvariantCulture),
            "--retention", Retention.ToString(CultureInfo.InvariantCulture),
            "--peer-timeout", WholeDuration.Format(PeerTimeout ?? AgentRunOptions.DefaultPeerTimeout),
            "--migration-resolve-timeout", WholeDuration.Format(MigrationResolveTimeout ?? AgentRunOptions.DefaultMigrationResolveTimeout),
        ];
        if (JsonLogs)
        {
            args.Add("--json-logs");
        }

        if (!BackgroundMerges)
        {
            args.Add("--no-background-merge");
        }

        if (KeepGroups)
        {
            args.Add("--keep-groups");
        }

        if (Peers is { } peers)
        {
            args.AddRange(["--node", peers.Node, "--cluster", peers.ClusterDir]);
            if (peers.Listen is { } listen)
            {
                args.AddRange(["--peer-listen", listen]);
            }
            foreach (var peer in peers.Peers)
            {
                args.AddRange(["--peer", peer.ToString()]);
            }
        }

        return args;
    }
}
