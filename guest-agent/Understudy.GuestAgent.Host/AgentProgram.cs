using System.CommandLine;
using System.CommandLine.Help;
using Understudy.GuestAgent.CommandLine;

namespace Understudy.GuestAgent.Host;

/// <summary>
/// understudy-agent's command line: runs the guest agent in the foreground until SIGINT or
/// SIGTERM. A command line that does not parse, or an agent that fails, is one line on stderr.
/// </summary>
internal static class AgentProgram
{
    public const string Name = "understudy-agent";

    private const int Failure = 1;
    private const int Usage = 2;

    public static async Task<int> RunAsync(string[] args)
    {
        var options = new AgentRunOptions(AgentRunOptions.NativeDirOption("understudy-agent's own directory"));
        var root = new RootCommand(
            "understudy-agent: the guest agent of an Understudy node, in the foreground until SIGINT or SIGTERM.\n" +
            "It serves the gRPC API (agent_services.proto) on --listen and the member protocol on STATE/coord.sock; 'hactl agent run' runs it too.");
        foreach (var option in options.All)
        {
            root.Add(option);
        }

        options.AddPeerValidators(root);

        root.SetAction((parse, ct) => RunAgentAsync(options.Read(parse), ct));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            Console.Error.WriteLine(UsageError.Line(Name, parse));
            return Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration
        {
            // Stopping stops every group first (HostOptions.ShutdownTimeout in AgentApplication).
            ProcessTerminationTimeout = TimeSpan.FromSeconds(20),
            EnableDefaultExceptionHandler = false,
        });
    }

    private static async Task<int> RunAgentAsync(AgentRunSettings settings, CancellationToken ct)
    {
        var options = new AgentHostOptions
        {
            ListenSocket = settings.ListenSocket,
            StateDir = settings.StateDir,
            NativeDir = settings.NativeDir,
            InterceptorPath = settings.InterceptorPath,
            JsonLogs = settings.JsonLogs,
            FullEvery = settings.FullEvery,
            ChainLimitPercent = settings.ChainLimitPercent,
            BackgroundMerges = settings.BackgroundMerges,
            KeepGroups = settings.KeepGroups,
            Retention = settings.Retention,
            Node = settings.Peers?.Node,
            ClusterDir = settings.Peers?.ClusterDir,
            PeerListen = settings.Peers?.Listen,
            Peers = settings.Peers?.Peers.ToDictionary(p => p.Name, p => p.Address, StringComparer.Ordinal) ?? [],
            PeerTimeout = settings.PeerTimeout ?? AgentRunOptions.DefaultPeerTimeout,
            MigrationResolveTimeout = settings.MigrationResolveTimeout ?? AgentRunOptions.DefaultMigrationResolveTimeout,
        };
        try
        {
            await AgentHost.RunAsync(options, ct);
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return 0; // SIGINT or SIGTERM: a normal stop.
        }
        catch (Exception e)
        {
            var (why, todo) = ErrorLine.SplitTodo(e.Message,
                "see the log above; check --listen, --state-dir and the native paths (hactl doctor)");
            Console.Error.WriteLine(ErrorLine.Format(Name, $"the agent on {UnixAddress.Scheme}{settings.ListenSocket} failed", why, todo));
            return Failure;
        }
    }
}
