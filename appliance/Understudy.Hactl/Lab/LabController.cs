using Understudy.Hactl.Cli;
using Understudy.Hactl.Cluster;
using Understudy.Hactl.Commands;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Lab;

/// <summary>
/// The lab's operations (docs/lab.md): bring nodes up and down, crash, partition, heal and
/// start them again, restart a node's agent alone. A node is a network, mount and pid namespace held by pid 1 of its pid
/// namespace, with one veth link to a bridge in the switch's own network namespace; the host's
/// network is never touched.
/// </summary>
public sealed class LabController(LabLayout layout, LabTools tools, Action<string> progress)
{
    private static readonly TimeSpan AgentStartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan AgentStatusTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(20);

    /// <param name="peerTimeout">the agents' --peer-timeout; null: their default.</param>
    /// <param name="migrationResolveTimeout">the agents' --migration-resolve-timeout; null: their default.</param>
    public async Task<LabUpResult> UpAsync(int nodes, TimeSpan? peerTimeout, TimeSpan? migrationResolveTimeout, CancellationToken ct)
    {
        const string what = "cannot bring the lab up";
        if (!layout.SocketPathsFit)
        {
            throw HactlException.Usage(what, $"{layout.Dir} is too long for the nodes' agent sockets (at most 107 bytes each)",
                "choose a shorter directory, such as /tmp/lab");
        }

        if (LabStateFile.TryRead(layout) is not null)
        {
            throw new HactlException(what, $"{layout.Dir} already holds a lab (lab.json)", $"run 'hactl lab down {layout.Dir}' first");
        }

        var state = layout.Plan(nodes) with { PeerTimeout = peerTimeout, MigrationResolveTimeout = migrationResolveTimeout };
        LabStateFile.Write(layout, state);
        try
        {
            progress("cluster credentials in " + layout.ClusterDir);
            ClusterAuthority.Ensure(layout.ClusterDir, state.Nodes.Select(n => n.Name).ToList());
            progress("switch: bridge " + LabLayout.Bridge);
            Directory.CreateDirectory(layout.SwitchDir);
            var sw = await tools.HoldAsync(layout.SwitchDir, netOnly: true, what, ct);
            state = state with { Switch = sw, SwitchNetNamespace = LabProcesses.NetNamespace(sw.Pid) };
            LabStateFile.Write(layout, state);
            await tools.IpAsync(layout.SwitchDir, sw, what, ct, "link", "add", LabLayout.Bridge, "type", "bridge");
            await tools.IpAsync(layout.SwitchDir, sw, what, ct, "link", "set", LabLayout.Bridge, "up");

            foreach (var node in state.Nodes.ToList())
            {
                state = await CreateNodeAsync(state, node.Name, what, ct);
            }

            foreach (var node in state.Nodes)
            {
                await WaitAgentAsync(node, what, ct);
            }
        }
        catch
        {
            progress("removing what was made");
            await DownAsync(CancellationToken.None);
            throw;
        }

        return new LabUpResult(layout.Dir, state.Subnet, layout.ClusterDir, state.Nodes.Select(View).ToList());
    }

    /// <summary>Removes every process of the lab, and with them its namespaces, links and mounts; returns how many were killed.</summary>
    public async Task<int> DownAsync(CancellationToken ct)
    {
        LabState? state;
        try
        {
            state = LabStateFile.TryRead(layout);
        }
        catch (HactlException)
        {
            state = null; // unreadable: the sweep below still finds every us-lab process of DIR
        }

        // pid 1 of each node first: the kernel then kills every process of its pid namespace, and its us-lab
        // keeper reaps it. Then every us-lab process of DIR that is left, holders before keepers, so that each
        // keeper still reaps its holder: what the state file never recorded (hactl was killed while it brought
        // the lab up, or DIR was removed), then the keepers.
        List<LabProcess?> recorded = [.. state?.Nodes.Select(n => n.Holder) ?? [], state?.Switch, .. state?.Nodes.Select(n => n.Agent) ?? []];
        var what = $"cannot take the lab in {layout.Dir} down";
        var killed = await KillAsync(recorded, what, ct);
        killed += await KillAsync(LabProcesses.UsLabProcessesUnder(layout.Dir).Where(p => LabProcesses.IsNamespaceInit(p.Pid)), what, ct);
        killed += await KillAsync(LabProcesses.UsLabProcessesUnder(layout.Dir), what, ct);

        if (Directory.Exists(layout.Dir))
        {
            foreach (var node in state?.Nodes ?? [])
            {
                File.Delete(layout.AgentSocket(node.Name));
            }

            LabStateFile.Delete(layout);
        }

        return killed;
    }

    /// <summary>A node fault: its link goes down and every process of the node dies at once (SIGKILL to pid 1 of its pid namespace).</summary>
    public async Task CrashAsync(string name, CancellationToken ct)
    {
        var what = $"cannot crash {name}";
        var (state, node) = RunningNode(name, what);
        if (LabProcesses.IsAlive(state.Switch))
        {
            await SetLinkAsync(state, node, up: false, what, ct); // else the link went with the switch
        }

        await KillAsync([node.Holder, node.Agent], what, ct);
        await KillAsync(LabProcesses.UsLabProcessesUnder(layout.NodeDir(name)), what, ct);

        File.Delete(layout.AgentSocket(name));
    }

    /// <summary>partition (<paramref name="up"/> false) or heal: the node's link goes down or up; its processes live on.</summary>
    public async Task SetLinkAsync(string name, bool up, CancellationToken ct)
    {
        var what = up ? $"cannot heal {name}" : $"cannot partition {name}";
        var (state, node) = RunningNode(name, what);
        await SetLinkAsync(state, node, up, what, ct);
    }

    /// <summary>Brings a crashed node back: new namespaces, the same address and state directory, a new agent.</summary>
    public async Task<LabNodeView> StartAsync(string name, CancellationToken ct)
    {
        var what = $"cannot start {name}";
        var state = LabStateFile.Read(layout, what);
        var node = KnownNode(state, name, what);
        if (LabProcesses.IsAlive(node.Holder))
        {
            throw new HactlException(what, $"{name} is running", $"crash it first with 'hactl lab crash {layout.Dir} {name}'");
        }

        await RemoveStaleLinkAsync(state, node, what, ct);
        state = await CreateNodeAsync(state, name, what, ct);
        node = state.Node(name)!;
        await WaitAgentAsync(node, what, ct);
        return View(node);
    }

    /// <summary>
    /// An agent fault alone: NODE's agent is killed (SIGKILL) and a new one started in the same
    /// namespaces with the same options. Everything else of the node lives on: its groups (their
    /// us-init outlives the agent), its link, its address.
    /// </summary>
    public async Task<LabNodeView> RestartAgentAsync(string name, CancellationToken ct)
    {
        var what = $"cannot restart the agent of {name}";
        var (state, node) = RunningNode(name, what);
        progress($"{name}: killing its agent");
        await KillAsync([node.Agent], what, ct);
        File.Delete(layout.AgentSocket(name));
        state = await StartAgentAsync(state, node, what, ct);
        node = state.Node(name)!;
        await WaitAgentAsync(node, what, ct);
        return View(node);
    }

    /// <summary>
    /// A crashed node's network namespace can outlive its processes for a while: the kernel keeps it
    /// while the TCP connections they left drain (data in flight when the node died waits for its
    /// retransmissions to give up), and the node's veth pair with it. Its switch end is removed, which
    /// takes the other end and the old namespace's last link along, so the new node can have the name.
    /// </summary>
    private async Task RemoveStaleLinkAsync(LabState state, LabNodeState node, string what, CancellationToken ct)
    {
        var sw = Switch(state, what);
        var links = await tools.IpAsync(layout.SwitchDir, sw, what, ct, "-o", "link", "show");
        if (LinkState(links, node.Link) != "absent")
        {
            progress($"{node.Name}: removing the link {node.Link} its crashed namespace still holds");
            await tools.IpAsync(layout.SwitchDir, sw, what, ct, "link", "del", node.Link);
        }
    }

    public async Task<LabStatusResult> StatusAsync(CancellationToken ct)
    {
        var state = LabStateFile.Read(layout, $"cannot get the status of the lab in {layout.Dir}");
        var links = LabProcesses.IsAlive(state.Switch)
            ? await tools.IpAsync(layout.SwitchDir, state.Switch!, "cannot read the lab's links", ct, "-o", "link", "show")
            : "";
        var nodes = new List<LabNodeStatus>();
        foreach (var node in state.Nodes)
        {
            var up = LabProcesses.IsAlive(node.Holder);
            var answers = up && await AgentAnswersAsync(node, ct);
            nodes.Add(new LabNodeStatus(node.Name, node.Address, "unix:" + layout.AgentSocket(node.Name), layout.NodeStateDir(node.Name),
                LabLayout.PeerAddress(node), up ? "up" : "crashed", LinkState(links, node.Link), answers));
        }
        return new LabStatusResult(layout.Dir, state.Subnet, layout.ClusterDir, nodes);
    }

    /// <summary>us-lab's arguments that run a command inside a running node, in the foreground.</summary>
    public IReadOnlyList<string> ExecArguments(string name, IReadOnlyList<string> command)
    {
        var (_, node) = RunningNode(name, $"cannot run a command on {name}");
        return tools.ExecArguments(layout.NodeDir(name), node.Holder!, command);
    }

    /// <summary>SIGKILL to each process, then waits until they are gone; returns how many were killed.</summary>
    private async Task<int> KillAsync(IEnumerable<LabProcess?> processes, string what, CancellationToken ct)
    {
        var killed = LabProcesses.KillAll(processes);
        if (killed.Count > 0)
        {
            progress($"waiting for {killed.Count} processes to exit");
        }

        var left = await LabProcesses.WaitGoneAsync(killed, ExitTimeout, ct);
        if (left.Count > 0)
        {
            throw new HactlException(what, $"{left.Count} of its processes did not exit after SIGKILL (pids {string.Join(' ', left.Select(p => p.Pid))})",
                "check them with 'ps -o pid,stat,wchan -p PID' (a process in state D waits for the kernel), then run the command again");
        }

        return killed.Count;
    }

    private async Task<LabState> CreateNodeAsync(LabState state, string name, string what, CancellationToken ct)
    {
        var sw = Switch(state, what);
        var node = state.Node(name)!;
        var dir = layout.NodeDir(name);
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(layout.NodeStateDir(name), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.Delete(layout.AgentSocket(name)); // left by a crashed agent

        progress($"{name}: namespaces");
        var holder = await tools.HoldAsync(dir, netOnly: false, what, ct);
        node = node with { Holder = holder, NetNamespace = LabProcesses.NetNamespace(holder.Pid), Agent = null };
        state = state.WithNode(node);
        LabStateFile.Write(layout, state);

        progress($"{name}: link {node.Link}, address {node.Address}");
        await tools.IpAsync(layout.SwitchDir, sw, what, ct, "link", "add", node.Link, "type", "veth", "peer", "name", "eth0",
            "address", LabLayout.MacAddress(node), "netns", holder.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await tools.IpAsync(layout.SwitchDir, sw, what, ct, "link", "set", node.Link, "master", LabLayout.Bridge, "up");
        await tools.IpAsync(dir, holder, what, ct, "link", "set", "lo", "up");
        await tools.IpAsync(dir, holder, what, ct, "address", "add", node.Address + "/24", "dev", "eth0");
        await tools.IpAsync(dir, holder, what, ct, "link", "set", "eth0", "up");

        return await StartAgentAsync(state, node, what, ct);
    }

    /// <summary>Starts the node's agent inside its namespaces (its holder's) and records it.</summary>
    private async Task<LabState> StartAgentAsync(LabState state, LabNodeState node, string what, CancellationToken ct)
    {
        progress($"{node.Name}: agent");
        var agent = await tools.StartAsync(layout.NodeDir(node.Name), node.Holder!, layout.AgentLog(node.Name),
            NodeAgent.CommandLine(layout, state, node, tools.NativeDir), what, ct);
        state = state.WithNode(node with { Agent = agent });
        LabStateFile.Write(layout, state);
        return state;
    }

    private async Task WaitAgentAsync(LabNodeState node, string what, CancellationToken ct)
    {
        progress($"{node.Name}: waiting for its agent to answer");
        var deadline = DateTime.UtcNow + AgentStartTimeout;
        while (!await AgentAnswersAsync(node, ct))
        {
            if (!LabProcesses.IsAlive(node.Agent))
            {
                throw new HactlException(what, $"the agent of {node.Name} exited: {LastLine(layout.AgentLog(node.Name))}",
                    $"read {layout.AgentLog(node.Name)}, and check that ./build.sh completed");
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new HactlException(what, $"the agent of {node.Name} did not answer within {AgentStartTimeout.TotalSeconds:0} s",
                    $"read {layout.AgentLog(node.Name)}");
            }

            await Task.Delay(100, ct);
        }
    }

    private async Task<bool> AgentAnswersAsync(LabNodeState node, CancellationToken ct)
    {
        var socket = layout.AgentSocket(node.Name);
        if (!File.Exists(socket))
        {
            return false;
        }

        using var client = AgentClient.Connect(new AgentEndpoint(socket));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(AgentStatusTimeout);
        try
        {
            await StatusCommand.GetAsync(client, null, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is HactlException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task SetLinkAsync(LabState state, LabNodeState node, bool up, string what, CancellationToken ct) =>
        await tools.IpAsync(layout.SwitchDir, Switch(state, what), what, ct, "link", "set", node.Link, up ? "up" : "down");

    private (LabState State, LabNodeState Node) RunningNode(string name, string what)
    {
        var state = LabStateFile.Read(layout, what);
        var node = KnownNode(state, name, what);
        if (!LabProcesses.IsAlive(node.Holder))
        {
            throw new HactlException(what, $"{name} is crashed", $"start it again with 'hactl lab start {layout.Dir} {name}'");
        }

        return (state, node);
    }

    private LabNodeState KnownNode(LabState state, string name, string what) =>
        state.Node(name) ?? throw HactlException.Usage(what, $"the lab in {layout.Dir} has no node '{name}'",
            $"name one of {string.Join(", ", state.Nodes.Select(n => n.Name))}");

    private LabProcess Switch(LabState state, string what) =>
        LabProcesses.IsAlive(state.Switch)
            ? state.Switch!
            : throw new HactlException(what, $"the lab's switch is gone (its process {state.Switch?.Pid} was killed)",
                $"take the lab down with 'hactl lab down {layout.Dir}' and bring it up again");

    private LabNodeView View(LabNodeState node) =>
        new(node.Name, node.Address, "unix:" + layout.AgentSocket(node.Name), layout.NodeStateDir(node.Name), LabLayout.PeerAddress(node));

    /// <summary>up, down or absent, from <c>ip -o link show</c>: "N: NAME@PEER: &lt;FLAGS&gt; ...".</summary>
    private static string LinkState(string links, string link)
    {
        foreach (var line in links.Split('\n'))
        {
            var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && parts[1].TrimEnd(':').Split('@')[0] == link)
            {
                var flags = parts[2][(parts[2].IndexOf('<') + 1)..parts[2].IndexOf('>')].Split(',');
                return flags.Contains("UP") ? "up" : "down";
            }
        }
        return "absent";
    }

    private static string LastLine(string path)
    {
        try
        {
            var last = File.ReadLines(path).LastOrDefault(l => l.Trim().Length > 0);
            return last is null ? "it printed nothing" : GuestAgent.CommandLine.ErrorLine.Clause(last);
        }
        catch (IOException)
        {
            return "it left no log";
        }
    }
}
