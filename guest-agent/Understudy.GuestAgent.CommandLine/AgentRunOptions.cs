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

    public Option<int> FullEvery { get; } = CreateFullEvery();

    public Option<int> ChainLimit { get; } = CreateChainLimit();

    public Option<bool> NoBackgroundMerge { get; } = new("--no-background-merge")
    {
        Description = "Leave incremental checkpoints as they are until a restore merges them (default: merge each one into full images in the background)",
    };

    /// <summary>Every option, in the order of the help.</summary>
    public IReadOnlyList<Option> All => [Listen, StateDir, JsonLogs, NativeDir, Interceptor, Json, FullEvery, ChainLimit, NoBackgroundMerge];

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
            BackgroundMerges: !parse.GetValue(NoBackgroundMerge));
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

    private static Option<int> CreateFullEvery()
    {
        var fullEvery = new Option<int>("--full-every")
        {
            Description = "At most N incremental checkpoints follow a full one; 0 makes every checkpoint full",
            HelpName = "N",
            DefaultValueFactory = _ => DefaultFullEvery,
        };
        fullEvery.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0)
            {
                result.AddError("--full-every must be 0 or more");
            }
        });
        return fullEvery;
    }

    private static Option<int> CreateChainLimit()
    {
        var chainLimit = new Option<int>("--chain-limit")
        {
            Description = "The next checkpoint is full once the incremental ones since the last full one hold PERCENT of its size",
            HelpName = "PERCENT",
            DefaultValueFactory = _ => DefaultChainLimitPercent,
        };
        chainLimit.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--chain-limit must be 1 or more");
            }
        });
        return chainLimit;
    }
}
