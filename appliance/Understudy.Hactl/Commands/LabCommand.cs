using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Lab;
using Understudy.Hactl.Native;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl lab up|status|down|crash|partition|heal|start|restart-agent|exec</c>: nodes on one machine (docs/lab.md).</summary>
public static class LabCommand
{
    public static Command Create() => new("lab",
        "Nodes on one machine, to try and test two-node features: each node is a network, mount and pid namespace with " +
        "its own address, state directory and guest agent, and the nodes are one cluster (a node's agent serves its peers on " +
        $"ADDRESS:{LabLayout.PeerPort}). Lab commands need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
    {
        CreateUp(),
        CreateStatus(),
        CreateDown(),
        CreateCrash(),
        CreatePartition(),
        CreateHeal(),
        CreateStart(),
        CreateRestartAgent(),
        CreateExec(),
    };

    private static Argument<string> Dir() => new("DIR") { Description = "The lab's directory: its state file, and each node's state directory and agent socket" };

    private static Argument<string> Node() => new("NODE") { Description = "A node of the lab: node-a, node-b, ..." };

    private static Command CreateUp()
    {
        var dir = Dir();
        var nodes = new Option<int>("--nodes")
        {
            Description = $"How many nodes (1 to {LabLayout.MaxNodes}), named node-a, node-b, ...",
            HelpName = "N",
            DefaultValueFactory = _ => 2,
            CustomParser = WholeNumber.Between("--nodes", 1, LabLayout.MaxNodes),
        };
        var peerTimeout = AgentRunOptions.PeerTimeoutOption("each node's agent");
        var resolveTimeout = AgentRunOptions.MigrationResolveTimeoutOption("each node's agent");
        var nativeDir = CommonOptions.NativeDir();
        var json = CommonOptions.Json();
        var up = new Command("up",
            "Create the lab's nodes in DIR (created if missing), the credentials of their cluster in DIR/cluster, and start each " +
            $"node's agent, which serves its peers on ADDRESS:{LabLayout.PeerPort} and knows every other node as a peer; --json lists them")
        {
            dir, nodes, peerTimeout, resolveTimeout, nativeDir, json,
        };
        up.SetHandler(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var result = await RunAsync(parse, dir, nativeDir, asJson, "cannot bring the lab up", LabDir.Create,
                lab => lab.UpAsync(parse.GetValue(nodes), parse.GetValue(peerTimeout), parse.GetValue(resolveTimeout), ct));
            if (asJson)
            {
                Json.Write(result, HactlJsonContext.Default.LabUpResult);
                return ExitCodes.Ok;
            }

            Console.WriteLine($"lab up in {result.Dir}: {result.Nodes.Count} nodes on {result.Subnet}, one cluster (credentials in {result.ClusterDir})");
            var table = new Table("NODE", "ADDRESS", "PEERS ON", "AGENT", "STATE DIR");
            foreach (var n in result.Nodes)
            {
                table.Add(n.Name, n.Address, n.PeerAddress, n.Agent, n.StateDir);
            }

            table.WriteTo(Console.Out);
            Console.WriteLine($"try: hactl status --agent {result.Nodes[0].Agent}   (or: export HACTL_AGENT={result.Nodes[0].Agent})");
            if (result.Nodes.Count > 1)
            {
                Console.WriteLine($"a standby: hactl launch GROUP --standby {result.Nodes[1].Name} --agent {result.Nodes[0].Agent} -- CMD");
            }
            return ExitCodes.Ok;
        });
        return up;
    }

    private static Command CreateStatus()
    {
        var dir = Dir();
        var nativeDir = CommonOptions.NativeDir();
        var json = CommonOptions.Json();
        var status = new Command("status", "Show each node of the lab: up or crashed, its link, its address and peer address, whether its agent answers")
        {
            dir, nativeDir, json,
        };
        status.SetHandler(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            var result = await RunAsync(parse, dir, nativeDir, asJson, "cannot get the status of the lab", LabDir.MustExist, lab => lab.StatusAsync(ct));
            if (asJson)
            {
                Json.Write(result, HactlJsonContext.Default.LabStatusResult);
                return ExitCodes.Ok;
            }

            Console.WriteLine($"lab in {result.Dir} on {result.Subnet}, cluster credentials in {result.ClusterDir}");
            var table = new Table("NODE", "STATE", "LINK", "ADDRESS", "PEERS ON", "AGENT", "ANSWERS");
            foreach (var n in result.Nodes)
            {
                table.Add(n.Name, n.State, n.Link, n.Address, n.PeerAddress, n.Agent, n.AgentAnswers ? "yes" : "no");
            }

            table.WriteTo(Console.Out);
            return ExitCodes.Ok;
        });
        return status;
    }

    private static Command CreateDown()
    {
        var dir = Dir();
        var nativeDir = CommonOptions.NativeDir();
        var down = new Command("down",
            "Remove the lab: kill every process of its nodes (SIGKILL), and with them their namespaces, links and mounts, " +
            "even after a crash of the lab or of hactl, or once DIR is removed. The files in DIR (state directories, logs) are kept")
        {
            dir, nativeDir,
        };
        down.SetHandler(async (parse, ct) =>
        {
            var killed = await RunAsync(parse, dir, nativeDir, json: false, "cannot take the lab down", LabDir.MayBeGone, lab => lab.DownAsync(ct));
            Console.WriteLine($"lab down in {new LabLayout(parse.GetRequiredValue(dir)).Dir}: {killed} processes killed; nothing of the lab runs");
            return ExitCodes.Ok;
        });
        return down;
    }

    private static Command CreateCrash()
    {
        var (dir, node, nativeDir) = (Dir(), Node(), CommonOptions.NativeDir());
        var crash = new Command("crash", "A node fault: NODE's link goes down and every process of NODE dies at once (SIGKILL)")
        {
            dir, node, nativeDir,
        };
        crash.SetHandler(async (parse, ct) =>
        {
            var name = parse.GetRequiredValue(node);
            await RunAsync(parse, dir, nativeDir, json: false, $"cannot crash {name}", LabDir.MustExist, lab => Done(lab.CrashAsync(name, ct)));
            Console.WriteLine($"{name} crashed: its processes are killed and its link is gone");
            return ExitCodes.Ok;
        });
        return crash;
    }

    private static Command CreatePartition() => CreateLink("partition", up: false,
        "Cut NODE off the lab's network: its link goes down, its processes live on", "{0} is partitioned: its link is down");

    private static Command CreateHeal() => CreateLink("heal", up: true,
        "Reconnect NODE to the lab's network: its link goes up", "{0} is healed: its link is up");

    private static Command CreateLink(string verb, bool up, string description, string done)
    {
        var (dir, node, nativeDir) = (Dir(), Node(), CommonOptions.NativeDir());
        var command = new Command(verb, description) { dir, node, nativeDir };
        command.SetHandler(async (parse, ct) =>
        {
            var name = parse.GetRequiredValue(node);
            await RunAsync(parse, dir, nativeDir, json: false, $"cannot {verb} {name}", LabDir.MustExist, lab => Done(lab.SetLinkAsync(name, up, ct)));
            Console.WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, done, name));
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateStart() => NodeCommand("start",
        "Bring a crashed NODE back: new namespaces, the same address and state directory, and a new agent on them with the same options",
        name => $"cannot start {name}", (lab, name, ct) => lab.StartAsync(name, ct),
        view => $"{view.Name} is up on {view.Address}: agent {view.Agent}, peers on {view.PeerAddress}");

    private static Command CreateRestartAgent() => NodeCommand("restart-agent",
        "An agent fault alone: kill NODE's agent (SIGKILL) and start a new one in the same namespaces with the same options. " +
        "The node's groups run on (their us-init outlives the agent) and the new agent takes them up; its link and address stay",
        name => $"cannot restart the agent of {name}", (lab, name, ct) => lab.RestartAgentAsync(name, ct),
        view => $"{view.Name}: its agent was killed and a new one answers on {view.Agent}; the node's groups ran on");

    /// <summary>A command on one node of a lab that answers with the node as it is afterwards (text, or --json).</summary>
    private static Command NodeCommand(string verb, string description, Func<string, string> failure,
        Func<LabController, string, CancellationToken, Task<LabNodeView>> operation, Func<LabNodeView, string> done)
    {
        var (dir, node, nativeDir) = (Dir(), Node(), CommonOptions.NativeDir());
        var json = CommonOptions.Json();
        var command = new Command(verb, description)
        {
            dir, node, nativeDir, json,
        };
        command.SetHandler(async (parse, ct) =>
        {
            var name = parse.GetRequiredValue(node);
            var asJson = parse.GetValue(json);
            var view = await RunAsync(parse, dir, nativeDir, asJson, failure(name), LabDir.MustExist, lab => operation(lab, name, ct));
            if (asJson)
            {
                Json.Write(view, HactlJsonContext.Default.LabNodeView);
            }
            else
            {
                Console.WriteLine(done(view));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateExec()
    {
        var (dir, node, nativeDir) = (Dir(), Node(), CommonOptions.NativeDir());
        var command = new Argument<string[]>("CMD")
        {
            Description = "Program and its arguments (put them after --)",
            Arity = ArgumentArity.OneOrMore,
        };
        var exec = new Command("exec", "Run CMD inside NODE (its network, mount and pid namespaces) in the foreground; exits with its status")
        {
            dir, node, nativeDir, command,
        };
        exec.SetHandler((parse, _) =>
        {
            var name = parse.GetRequiredValue(node);
            var what = $"cannot run a command on {name}";
            var (layout, tools) = Open(parse, dir, nativeDir, what, LabDir.MustExist);
            var args = new LabController(layout, tools, _ => { }).ExecArguments(name, parse.GetRequiredValue(command));
            ProcessImage.Replace(tools.UsLab, args, what);
            return Task.FromResult(ExitCodes.Failure);
        });
        return exec;
    }

    private static async Task<bool> Done(Task task)
    {
        await task;
        return true;
    }

    /// <summary>Checks the privileges, takes the lab's lock and runs one operation, with a progress line on a terminal.</summary>
    private static async Task<T> RunAsync<T>(ParseResult parse, Argument<string> dir, Option<string?> nativeDir, bool json, string what, LabDir mode,
        Func<LabController, Task<T>> operation)
    {
        var (layout, tools) = Open(parse, dir, nativeDir, what, mode);
        using var progress = new ProgressLine(json);
        using var held = Directory.Exists(layout.Dir) ? LabLock.Take(layout, what) : null;
        return await operation(new LabController(layout, tools, text => progress.Show($"lab: {text}")));
    }

    private static (LabLayout Layout, LabTools Tools) Open(ParseResult parse, Argument<string> dir, Option<string?> nativeDir, string what, LabDir mode)
    {
        var layout = new LabLayout(parse.GetRequiredValue(dir));
        var tools = new LabTools(NativeLayout.NativeDir(parse.GetValue(nativeDir)), layout);
        LabPrivileges.Check(tools, what);
        if (mode == LabDir.Create)
        {
            Directory.CreateDirectory(layout.Dir);
        }
        else if (mode == LabDir.MustExist && !Directory.Exists(layout.Dir))
        {
            throw HactlException.Usage(what, $"{layout.Dir} does not exist", "name the directory given to 'hactl lab up'");
        }

        return (layout, tools);
    }
}
