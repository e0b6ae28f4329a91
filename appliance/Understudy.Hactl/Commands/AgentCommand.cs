using System.CommandLine;
using Understudy.GuestAgent;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl agent run</c>: the guest agent in the foreground.</summary>
public static class AgentCommand
{
    public static Command Create()
    {
        var agent = new Command("agent", "Run the guest agent of this node");
        agent.Add(CreateRun());
        return agent;
    }

    private static Command CreateRun()
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
            if (!AgentEndpoint.TryParse(value, out _, out var why))
            {
                result.AddError($"--listen '{value}' is not a listen address: {why}");
            }
        });
        var stateDir = new Option<string>("--state-dir")
        {
            Description = "Directory for sockets, logs and checkpoints (created 0700 if missing)",
            HelpName = "DIR",
            Required = true,
        };
        var jsonLogs = new Option<bool>("--json-logs") { Description = "Write the agent's log as one JSON object per line" };
        var nativeDir = CommonOptions.NativeDir();
        var interceptor = new Option<string?>("--interceptor")
        {
            Description = "Path of libunderstudy.so (default: NATIVE_DIR/../lib/libunderstudy.so)",
            HelpName = "PATH",
        };
        var json = new Option<bool>("--json") { Description = "Same as --json-logs (the agent prints a log, not one document)" };
        var fullEvery = new Option<int>("--full-every")
        {
            Description = "At most N incremental checkpoints follow a full one; 0 makes every checkpoint full",
            HelpName = "N",
            DefaultValueFactory = _ => AgentHostOptions.DefaultFullEvery,
        };
        fullEvery.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 0)
            {
                result.AddError("--full-every must be 0 or more");
            }
        });
        var chainLimit = new Option<int>("--chain-limit")
        {
            Description = "The next checkpoint is full once the incremental ones since the last full one hold PERCENT of its size",
            HelpName = "PERCENT",
            DefaultValueFactory = _ => AgentHostOptions.DefaultChainLimitPercent,
        };
        chainLimit.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--chain-limit must be 1 or more");
            }
        });

        var noBackgroundMerge = new Option<bool>("--no-background-merge")
        {
            Description = "Leave incremental checkpoints as they are until a restore merges them (default: merge each one into full images in the background)",
        };

        var run = new Command("run", "Run the guest agent in the foreground until SIGINT or SIGTERM")
        {
            listen, stateDir, jsonLogs, nativeDir, interceptor, json, fullEvery, chainLimit, noBackgroundMerge,
        };

        run.SetHandler(async (parse, ct) =>
        {
            AgentEndpoint.TryParse(parse.GetRequiredValue(listen), out var endpoint, out _);
            var native = NativePaths.NativeDir(parse.GetValue(nativeDir));
            var options = new AgentHostOptions
            {
                ListenSocket = endpoint!.SocketPath,
                StateDir = Path.GetFullPath(parse.GetRequiredValue(stateDir)),
                NativeDir = native,
                InterceptorPath = NativePaths.Interceptor(parse.GetValue(interceptor), native),
                JsonLogs = parse.GetValue(jsonLogs) || parse.GetValue(json),
                FullEvery = parse.GetValue(fullEvery),
                ChainLimitPercent = parse.GetValue(chainLimit),
                BackgroundMerges = !parse.GetValue(noBackgroundMerge),
            };
            try
            {
                await AgentHost.RunAsync(options, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // SIGINT or SIGTERM: a normal stop.
            }
            catch (Exception e) when (e is not HactlException and not OperationCanceledException)
            {
                var (why, todo) = ErrorLine.SplitTodo(e.Message,
                    "see the log above; check --listen, --state-dir and the native paths (hactl doctor)");
                throw new HactlException($"the agent on {endpoint.Address} failed", why, todo);
            }
            return ExitCodes.Ok;
        });
        return run;
    }
}
