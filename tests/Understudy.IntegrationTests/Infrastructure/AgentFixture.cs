using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// One real guest agent for a test class: `out/bin/hactl agent run --listen unix:TMP/agent.sock
/// --state-dir TMP/state`, on a fresh temporary directory. On dispose it stops every group,
/// kills the agent, and kills and reaps every process left below the test process.
/// </summary>
public class AgentFixture : IAsyncLifetime
{
    private static int _groupCounter;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly IReadOnlyList<string> _agentArgs;
    private Process? _agent;
    private StreamWriter? _agentLog;
    private readonly object _agentLogLock = new();
    private readonly ConcurrentDictionary<string, byte> _groups = new();
    private readonly ConcurrentDictionary<int, byte> _hostPids = new();

    /// <summary>The agent as a class fixture: no extra environment or options.</summary>
    public AgentFixture()
        : this(new Dictionary<string, string>())
    {
    }

    /// <summary>An agent with extra environment variables (fault injection) and `agent run` options.</summary>
    internal AgentFixture(IReadOnlyDictionary<string, string> environment, params string[] agentArgs)
    {
        _environment = environment;
        _agentArgs = agentArgs;
    }

    public string TempDir { get; private set; } = "";
    public string StateDir => Path.Combine(TempDir, "state");
    public string Socket => Path.Combine(TempDir, "agent.sock");
    public string AgentAddress => "unix:" + Socket;
    public string AgentLogPath => Path.Combine(TempDir, "agent.log");
    public Hactl Hactl { get; private set; } = new(null);

    public bool AgentRunning => _agent is { HasExited: false };

    /// <summary>The agent's pid (hactl agent run executes the agent in its own place), 0 when it is not running.</summary>
    public int AgentPid => _agent is { HasExited: false } agent ? agent.Id : 0;

    public string GroupDir(string group) => Path.Combine(StateDir, "groups", group);

    public async Task InitializeAsync()
    {
        Native.BecomeSubreaper();
        var baseDir = Directory.Exists("/tmp") ? "/tmp" : Path.GetTempPath();
        TempDir = Path.Combine(baseDir, "us-it-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(TempDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(StateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Hactl = new Hactl(AgentAddress);
        await StartAgentAsync(_environment, [.. _agentArgs]);
    }

    /// <summary>
    /// Starts the agent on this fixture's state directory (again, after <see cref="KillAgentAsync"/>),
    /// with these environment variables and `agent run` options; returns once it answers `status`.
    /// </summary>
    public async Task StartAgentAsync(IReadOnlyDictionary<string, string>? environment = null, params string[] agentArgs)
    {
        if (AgentRunning)
        {
            throw new InvalidOperationException("the agent is already running");
        }

        _agent?.Dispose();
        var psi = new ProcessStartInfo(Repo.Hactl)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = TempDir,
        };
        foreach (var a in new[] { "agent", "run", "--listen", AgentAddress, "--state-dir", StateDir }.Concat(agentArgs))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("HACTL_AGENT");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        lock (_agentLogLock)
        {
            // Appended to: the log of an agent started again follows the one it replaces.
            _agentLog ??= new StreamWriter(new FileStream(AgentLogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
            {
                AutoFlush = true,
            };
        }
        if (File.Exists(Socket))
        {
            File.Delete(Socket); // left by an agent that was killed
        }

        _agent = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _agent.OutputDataReceived += (_, e) => AgentLine("out", e.Data);
        _agent.ErrorDataReceived += (_, e) => AgentLine("err", e.Data);
        _agent.Start();
        ProcessSweeper.RegisterDotnetChild(_agent.Id);
        ProcessSweeper.RegisterAgent(_agent.Id);
        _agent.BeginOutputReadLine();
        _agent.BeginErrorReadLine();

        // Ready once the socket accepts connections and answers `status`.
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        HactlResult? last = null;
        while (true)
        {
            if (_agent.HasExited)
            {
                throw new InvalidOperationException(
                    $"the agent exited with code {_agent.ExitCode} before it was ready:\n{AgentLogTail(40)}");
            }

            if (File.Exists(Socket) && CanConnect(Socket))
            {
                last = await Hactl.Run("status");
                if (last.ExitCode == 0)
                {
                    break;
                }
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException(
                    $"the agent did not become ready on {Socket} within {Timeouts.Wait.TotalSeconds:0} s" +
                    (last is null ? "" : $"\nlast status:\n{last}") + $"\nagent log:\n{AgentLogTail(40)}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>kill -9 of the agent, as a crash would; its groups' processes are left as they are.</summary>
    public async Task KillAgentAsync()
    {
        if (_agent is null || _agent.HasExited)
        {
            return;
        }

        ProcessSweeper.Signal(new[] { _agent.Id }, Native.SIGKILL);
        await _agent.WaitForExitAsync(new CancellationTokenSource(Timeouts.Wait).Token);
        ProcessSweeper.UnregisterAgent(_agent.Id);
        AgentLine("test", $"agent {_agent.Id} killed with SIGKILL");
    }

    /// <summary>The agent's log so far.</summary>
    public string AgentLogText()
    {
        lock (_agentLogLock)
        {
            try
            {
                using var fs = new FileStream(AgentLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                return new StreamReader(fs).ReadToEnd();
            }
            catch (IOException) { return ""; }
        }
    }

    private void AgentLine(string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_agentLogLock)
        {
            try { _agentLog?.WriteLine($"{stream}: {line}"); } catch (ObjectDisposedException) { }
        }
    }

    private static bool CanConnect(string path)
    {
        try
        {
            using var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }

    /// <summary>A new group for one test; stopped and cleaned up when the session is disposed.</summary>
    public GroupSession OpenGroup(string prefix, ITestOutputHelper output)
    {
        var name = $"{prefix}-{Interlocked.Increment(ref _groupCounter)}";
        _groups[name] = 0;
        return new GroupSession(this, name, output);
    }

    /// <summary>Remembers every hostPid and initHostPid a hactl reply mentions, for cleanup.</summary>
    public IReadOnlyCollection<int> Track(JsonElement reply)
    {
        var pids = reply.AllLongs("hostPid").Concat(reply.AllLongs("initHostPid"))
            .Where(p => p > 1).Select(p => (int)p).ToList();
        foreach (var p in pids)
        {
            _hostPids[p] = 0;
        }

        return pids;
    }

    public IEnumerable<int> TrackedPids => _hostPids.Keys;

    public string AgentLogTail(int n)
    {
        try
        {
            lock (_agentLogLock)
            {
                using var fs = new FileStream(AgentLogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var r = new StreamReader(fs);
                var lines = r.ReadToEnd().Split('\n');
                return string.Join('\n', lines.Skip(Math.Max(0, lines.Length - n)));
            }
        }
        catch (IOException) { return "(no agent log)"; }
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (AgentRunning)
            {
                foreach (var g in _groups.Keys)
                {
                    try { await Hactl.Run(new[] { "stop", g }, timeout: Timeouts.Cleanup); }
                    catch (TimeoutException) { }
                }
            }
        }
        finally
        {
            if (_agent is not null)
            {
                try
                {
                    if (!_agent.HasExited)
                    {
                        _agent.Kill(entireProcessTree: true);
                    }

                    await _agent.WaitForExitAsync(new CancellationTokenSource(Timeouts.Cleanup).Token);
                }
                catch (InvalidOperationException) { }
                catch (OperationCanceledException) { }
                ProcessSweeper.UnregisterAgent(_agent.Id);
            }
            // Host pids we were told about, then everything else still below us.
            ProcessSweeper.Signal(_hostPids.Keys, Native.SIGKILL);
            await ProcessSweeper.SweepAsync(Timeouts.Cleanup);
            lock (_agentLogLock)
            {
                _agentLog?.Dispose();
                _agentLog = null;
            }
            _agent?.Dispose();
            if (Environment.GetEnvironmentVariable("UNDERSTUDY_IT_KEEP") != "1")
            {
                try { Directory.Delete(TempDir, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
    }
}
