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
        Description = "Leave incremental checkpoints as they are until a restore merges them (default: merge each one into full images in the background)",
    };

    public Option<bool> KeepGroups { get; } = new("--keep-groups")
    {
        Description = "On SIGINT or SIGTERM, leave the groups running for the next agent on this state directory to take up " +
                      "(an upgrade, a service restart); default: stop them",
    };

    /// <summary>Every option, in the order of the help.</summary>
    public IReadOnlyList<Option> All => [Listen, StateDir, JsonLogs, NativeDir, Interceptor, Json, FullEvery, ChainLimit, NoBackgroundMerge, KeepGroups];

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
            KeepGroups: parse.GetValue(KeepGroups));
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
