using System.Diagnostics;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Commands;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Demo;

/// <summary>
/// The demo's guest agent: understudy-agent, started as a child of hactl on a private socket,
/// with its log in a file. Disposing stops it: SIGTERM, so that it stops its groups, then
/// SIGKILL if it does not exit in time.
/// </summary>
public sealed class ChildAgent : IAsyncDisposable
{
    private const string What = "cannot start the demo's agent";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logLock = new();
    private string _lastLogLine = "";

    private ChildAgent(Process process, StreamWriter log, AgentEndpoint endpoint)
    {
        _process = process;
        _log = log;
        Endpoint = endpoint;
    }

    public AgentEndpoint Endpoint { get; }

    /// <summary>Starts the agent, its stdout and stderr appended to <paramref name="logPath"/>, and waits until it answers a status call.</summary>
    public static async Task<ChildAgent> StartAsync(AgentRunSettings settings, string logPath, CancellationToken ct)
    {
        var program = NativeLayout.Agent(settings.NativeDir);
        if (!File.Exists(program))
        {
            throw new HactlException(What, $"{program} does not exist",
                $"build it with ./build.sh, or point --native-dir or ${NativeLayout.NativeDirVariable} at the directory that holds it");
        }

        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in settings.ToArguments())
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        var agent = new ChildAgent(process, new StreamWriter(logPath, append: true) { AutoFlush = true }, new AgentEndpoint(settings.ListenSocket));
        process.OutputDataReceived += (_, e) => agent.Log(e.Data);
        process.ErrorDataReceived += (_, e) => agent.Log(e.Data);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            await agent.DisposeAsync();
            throw new HactlException(What, $"{program} could not be started ({ErrorLine.Clause(e.Message)})", "rebuild it with ./build.sh");
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await agent.WaitReadyAsync(ct);
            return agent;
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }
    }

    private async Task WaitReadyAsync(CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        using var client = AgentClient.Connect(Endpoint);
        while (true)
        {
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(ct); // until its output is read to the end
                throw new HactlException(What, $"it exited with code {_process.ExitCode}: {LastLogLine()}",
                    "run 'hactl doctor' and check that ./build.sh completed");
            }
            if (File.Exists(Endpoint.SocketPath))
            {
                try
                {
                    await StatusCommand.GetAsync(client, null, ct);
                    return;
                }
                catch (HactlException) when (DateTime.UtcNow < deadline)
                {
                    // The socket exists but the server is not answering yet.
                }
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw new HactlException(What, $"it did not answer on {Endpoint.Address} within {StartTimeout.TotalSeconds:0} s",
                    "run 'hactl agent run' by hand to see its log");
            }

            await Task.Delay(100, ct);
        }
    }

    private void Log(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_logLock)
        {
            _log.WriteLine(line);
            if (line.Trim().Length > 0)
            {
                _lastLogLine = line.Trim();
            }
        }
    }

    private string LastLogLine()
    {
        lock (_logLock)
        {
            return _lastLogLine.Length == 0 ? "it printed nothing" : ErrorLine.Clause(_lastLogLine);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Libc.Kill(_process.Id, Libc.SigTerm);
                using var grace = new CancellationTokenSource(StopTimeout);
                try
                {
                    await _process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
        }
        catch (InvalidOperationException)
        {
            // It was never started.
        }
        finally
        {
            _process.Dispose();
            lock (_logLock)
            {
                _log.Dispose();
            }
        }
    }
}
