using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>A node of a lab, as `hactl lab up --json` lists it.</summary>
/// <param name="PeerAddress">IP:PORT where the node's agent serves its peers.</param>
public sealed record LabNode(string Name, string Address, string Agent, string StateDir, string PeerAddress)
{
    public string GroupDir(string group) => Path.Combine(StateDir, "groups", group);

    /// <summary>The output.log of a group launched on this node (a group restored on another node writes on into it).</summary>
    public GroupLog Log(string group) => new(Path.Combine(GroupDir(group), "output.log"));
}

/// <summary>
/// A lab of one test, brought up with the real `hactl lab up DIR --json` on a fresh directory.
/// Disposing it runs `hactl lab down DIR`, whether the test passed or not, then removes DIR.
/// </summary>
public sealed class LabSession : IAsyncDisposable
{
    private readonly ITestOutputHelper _out;
    private readonly List<Process> _background = [];
    private readonly IReadOnlyDictionary<string, string>? _environment;

    private LabSession(string dir, ITestOutputHelper output, IReadOnlyDictionary<string, string>? environment)
    {
        Dir = dir;
        _out = output;
        _environment = environment;
    }

    public string Dir { get; }
    public IReadOnlyList<LabNode> Nodes { get; private set; } = [];

    /// <summary>The cluster's credentials, as `hactl lab up --json` says.</summary>
    public string ClusterDir { get; private set; } = "";

    public LabNode Node(string name) => Nodes.Single(n => n.Name == name);

    /// <summary>hactl ARGS --agent NODE's agent --json.</summary>
    public Hactl On(LabNode node) => new Hactl(node.Agent).WithLog(Note);

    /// <summary>
    /// The lab's agents take a silent peer for lost and give up asking about a lost takeover answer
    /// sooner than by default (10 s, 30 s): the fault tests cut links on purpose and would otherwise
    /// spend most of their time waiting for the defaults.
    /// </summary>
    public const string PeerTimeout = "5s", MigrationResolveTimeout = "6s";

    public static string NewDir() => Path.Combine("/tmp", "us-lab-" + Guid.NewGuid().ToString("N")[..8]);

    /// <param name="environment">for every `hactl lab` command, so for the nodes' agents that `lab up` and `lab start` run (fault injection)</param>
    public static async Task<LabSession> UpAsync(ITestOutputHelper output, int nodes = 2, string? dir = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        // As AgentFixture does, and as systemd --user or a container's init would: a node's processes must
        // still end up children of the node's pid 1, never of a subreaper outside the node.
        Native.BecomeSubreaper();
        var lab = new LabSession(dir ?? NewDir(), output, environment);
        try
        {
            var up = (await lab.Lab("up", lab.Dir, "--nodes", nodes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--peer-timeout", PeerTimeout, "--migration-resolve-timeout", MigrationResolveTimeout, "--json")).Ok();
            lab.Nodes = up.Json.GetProperty("nodes").EnumerateArray().Select(n => new LabNode(
                n.GetProperty("name").GetString()!, n.GetProperty("address").GetString()!,
                n.GetProperty("agent").GetString()!, n.GetProperty("stateDir").GetString()!, n.GetProperty("peerAddress").GetString()!)).ToList();
            lab.ClusterDir = up.Json.GetProperty("clusterDir").GetString()!;
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>The command line of <paramref name="node"/>'s agent, read from /proc with the pid that DIR/lab.json records.</summary>
    public IReadOnlyList<string> AgentCommandLine(string node)
    {
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "lab.json")));
        var pid = state.RootElement.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == node)
            .GetProperty("agent").GetProperty("pid").GetInt32();
        return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// The host's pid of the process that is <paramref name="pidInNode"/> in <paramref name="node"/>'s pid
    /// namespace (as its agent's `hostPid` names it): the one whose NSpid says so and that descends from
    /// the node's pid 1, which DIR/lab.json records.
    /// </summary>
    public int HostPidOf(string node, long pidInNode)
    {
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "lab.json")));
        var holder = state.RootElement.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("name").GetString() == node)
            .GetProperty("holder").GetProperty("pid").GetInt32();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid)
                && StatusField(pid, "NSpid") is { } nspid
                && nspid.Split('\t', StringSplitOptions.RemoveEmptyEntries) is [_, var inNode, ..]
                && inNode == pidInNode.ToString(System.Globalization.CultureInfo.InvariantCulture)
                && Descends(pid, holder))
            {
                return pid;
            }
        }
        throw new Xunit.Sdk.XunitException($"no process is pid {pidInNode} of {node}");
    }

    private static bool Descends(int pid, int ancestor)
    {
        while (pid > 1)
        {
            if (!int.TryParse(StatusField(pid, "PPid"), out pid))
            {
                return false;
            }
            if (pid == ancestor)
            {
                return true;
            }
        }
        return false;
    }

    private static string? StatusField(int pid, string name)
    {
        try
        {
            return File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..].Trim();
        }
        catch (IOException)
        {
            return null; // it ended
        }
    }

    /// <summary>hactl lab ARGS (no --agent, no --json added).</summary>
    public Task<HactlResult> Lab(params string[] args) => Hactl.RunRaw(Repo.Hactl, ["lab", .. args], Timeouts.Command, Note, _environment);

    /// <summary>hactl lab exec DIR NODE -- CMD..., to its end.</summary>
    public Task<HactlResult> Exec(string node, params string[] command) => Lab(["exec", Dir, node, "--", .. command]);

    /// <summary>
    /// hactl lab exec DIR NODE -- CMD... in the background, until it prints a line containing
    /// <paramref name="ready"/>; `lab down` ends it with the node.
    /// </summary>
    public async Task ExecInBackground(string node, string ready, params string[] command)
    {
        var psi = new ProcessStartInfo(Repo.Hactl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "lab", "exec", Dir, node, "--" }.Concat(command))
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi)!;
        _background.Add(p);
        using var cancel = new CancellationTokenSource(Timeouts.Wait);
        while (await p.StandardOutput.ReadLineAsync(cancel.Token) is { } line)
        {
            Note($"{node}: {line}");
            if (line.Contains(ready, StringComparison.Ordinal))
            {
                return;
            }
        }
        throw new Xunit.Sdk.XunitException($"`{string.Join(' ', command)}` on {node} ended before printing '{ready}': {await p.StandardError.ReadToEndAsync()}");
    }

    /// <summary>Every process of <paramref name="node"/>: its pid there and its command line (arguments joined by spaces), read from the node's /proc.</summary>
    public async Task<IReadOnlyList<(long Pid, string CommandLine)>> ProcessesIn(string node)
    {
        const string list = "for p in /proc/[0-9]*; do printf '%s ' \"${p#/proc/}\"; tr '\\0' ' ' < \"$p/cmdline\" 2>/dev/null; echo; done";
        return (await Exec(node, "/bin/sh", "-c", list)).Ok().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 2))
            .Where(f => long.TryParse(f[0], out _))
            .Select(f => (long.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), f.Length > 1 ? f[1] : ""))
            .ToList();
    }

    /// <summary>
    /// SIGUSR1 to each process (host pids as the node's agent reports them), sent inside
    /// <paramref name="node"/>; waits for "VERIFY OK ROLE" of every role in the group's log.
    /// </summary>
    public async Task VerifyInNode(string node, IEnumerable<long> hostPids, IEnumerable<string> roles, GroupLog log)
    {
        var mark = log.Length;
        foreach (var pid in hostPids)
        {
            (await Exec(node, "/bin/sh", "-c", string.Create(System.Globalization.CultureInfo.InvariantCulture, $"kill -USR1 {pid}"))).Ok();
        }
        foreach (var role in roles)
        {
            await WaitUntil(() => log.Verified(role, mark).Count > 0, $"VERIFY OK {role} on {node}", () => log.Tail(10));
        }
    }

    public static async Task WaitForCount(LabNode node, string group, string tag, int n)
    {
        var log = node.Log(group);
        await WaitUntil(() => log.Counts(tag).Count >= n, $"{n} \"{tag}\" lines on {node.Name}", () => log.Tail(10));
    }

    public static async Task WaitUntil(Func<bool> ok, string what, Func<string>? detail = null)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (!ok())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {what}\n{detail?.Invoke()}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    public void Note(string line)
    {
        try { _out.WriteLine($"[{DateTime.Now:HH:mm:ss.fff}] {line}"); }
        catch (InvalidOperationException) { } // the test already finished
    }

    public async ValueTask DisposeAsync()
    {
        var down = await Lab("down", Dir);
        if (down.ExitCode != 0 && Directory.Exists(Dir))
        {
            Note($"lab down failed:\n{down}");
        }

        foreach (var p in _background)
        {
            try
            {
                await p.WaitForExitAsync(new CancellationTokenSource(Timeouts.Cleanup).Token);
            }
            catch (OperationCanceledException)
            {
                Note($"a command run in the lab (pid {p.Id}) outlived lab down; killed");
                p.Kill(entireProcessTree: true);
            }
            p.Dispose();
        }

        if (Environment.GetEnvironmentVariable("UNDERSTUDY_IT_KEEP") != "1" && Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }
    }
}
