using System.Diagnostics;
using System.Net.Sockets;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>
/// A real guest agent, `out/bin/hactl agent run`, on a state directory that outlives it, so
/// that a test can stop it (SIGTERM, as an operator would) and start it again.
/// </summary>
public sealed class AgentProcess
{
    private const int SigTerm = 15;
    private readonly object _logLock = new();
    private Process? _process;
    private StreamWriter? _log;

    public AgentProcess(string dir)
    {
        Dir = dir;
    }

    public string Dir { get; }
    public string StateDir => Path.Combine(Dir, "state");
    public string Socket => Path.Combine(Dir, "agent.sock");
    public string Address => "unix:" + Socket;
    public string LogPath => Path.Combine(Dir, "agent.log");
    public bool Running => _process is { HasExited: false };

    /// <param name="options">more `agent run` options</param>
    public async Task StartAsync(params string[] options)
    {
        var psi = new ProcessStartInfo(Repo.Hactl)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Dir,
        };
        foreach (var arg in new[] { "agent", "run", "--listen", Address, "--state-dir", StateDir }.Concat(options))
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment.Remove("HACTL_AGENT");
        lock (_logLock)
        {
            _log ??= new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Write("out", e.Data);
        process.ErrorDataReceived += (_, e) => Write("err", e.Data);
        process.Start();
        ProcessSweeper.RegisterDotnetChild(process.Id);
        ProcessSweeper.RegisterAgent(process.Id);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var hactl = new Hactl(Address);
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the agent exited with code {process.ExitCode} before it was ready:\n{LogTail(40)}");
            }

            if (CanConnect() && (await hactl.Run("status")).ExitCode == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the agent did not answer on {Socket} within {Timeouts.Wait.TotalSeconds:0} s:\n{LogTail(40)}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>SIGTERM, as a service manager stops it; it stops its groups (unless it runs with --keep-groups) and exits. SIGKILL if it hangs.</summary>
    public async Task StopAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                Native.Kill(process.Id, SigTerm);
                using var grace = new CancellationTokenSource(Timeouts.Cleanup);
                try
                {
                    await process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
        finally
        {
            ProcessSweeper.UnregisterAgent(process.Id);
            process.Dispose();
            _process = null;
        }
    }

    /// <summary>SIGKILL, as a crash would: nothing of the agent's own clean-up runs; its groups are left as they are.</summary>
    public async Task KillAsync()
    {
        if (_process is not { } process)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                Native.Kill(process.Id, Native.SIGKILL);
                await process.WaitForExitAsync(new CancellationTokenSource(Timeouts.Wait).Token);
            }
        }
        finally
        {
            ProcessSweeper.UnregisterAgent(process.Id);
            process.Dispose();
            _process = null;
            Write("test", "agent killed with SIGKILL");
        }
    }

    public void CloseLog()
    {
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
    }

    public string LogTail(int lines)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var all = new StreamReader(stream).ReadToEnd().Split('\n');
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return "(no agent log)";
        }
    }

    private void Write(string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logLock)
        {
            _log?.WriteLine($"{stream}: {line}");
        }
    }

    private bool CanConnect()
    {
        if (!File.Exists(Socket))
        {
            return false;
        }

        try
        {
            using var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(Socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
