using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>
/// One group's us-init process, PID 1 of the group's pid namespace: starts it (or attaches to
/// one a previous agent started, which outlived it), speaks its control protocol over its
/// <see cref="InitChannel"/>, and stops it. Killing it kills the whole group.
/// </summary>
internal sealed class InitProcess
{
    private readonly InitChannel _channel;
    private readonly IInitEventSink _sink;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource<int> _ready = NewSource<int>();
    private readonly TaskCompletionSource<int> _restored = NewSource<int>();
    private readonly TaskCompletionSource<int> _exited = NewSource<int>();
    private readonly SemaphoreSlim _launchLock = new(1, 1);
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly object _sync = new();
    private readonly int _pid;
    private TaskCompletionSource<int>? _launch;
    private volatile string? _lastError;
    private volatile bool _stopping;

    private InitProcess(string group, bool restoring, InitChannel channel, int pid, IInitEventSink sink, ILogger logger)
    {
        Group = group;
        Restoring = restoring;
        _channel = channel;
        _pid = pid;
        _sink = sink;
        _logger = logger;
    }

    public string Group { get; }

    /// <summary>Started by an earlier agent, and attached to on its control socket.</summary>
    public bool Adopted => _channel is SocketInitChannel;

    /// <summary>ATTACHED's count of exits us-init could not keep for this agent (it keeps the last 1024).</summary>
    public int ExitsLost { get; private set; }

    /// <summary>The processes it reaped so far, and how each ended.</summary>
    public ReapedProcesses Reaped { get; } = new();

    /// <summary>Started with --restore: RESTORED is expected, and an ERROR fails the restore.</summary>
    public bool Restoring { get; }

    /// <summary>us-init's pid as the agent sees it (READY's, once it came).</summary>
    public int HostPid => _ready.Task.IsCompletedSuccessfully ? _ready.Task.Result : _pid;

    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>Completes with the exit code once us-init is gone.</summary>
    public Task<int> Exited => _exited.Task;

    /// <exception cref="InitProcessException">the program could not be started.</exception>
    public static InitProcess Start(string group, ProcessStartInfo startInfo, bool restoring, IInitEventSink sink, ILogger logger)
    {
        var channel = PipeInitChannel.Start(group, startInfo, logger);
        var init = new InitProcess(group, restoring, channel, channel.ProcessId, sink, logger);
        _ = Task.Run(init.ReadReportsAsync);
        return init;
    }

    /// <summary>
    /// A us-init found running, on the channel to it: ready once it said ATTACHED (then come
    /// the exits it kept while no agent listened).
    /// </summary>
    public static InitProcess Attach(string group, SocketInitChannel channel, IInitEventSink sink, ILogger logger)
    {
        var init = new InitProcess(group, restoring: false, channel, channel.HostPid, sink, logger);
        _ = Task.Run(init.ReadReportsAsync);
        return init;
    }

    public Task<int> WaitReadyAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    /// <summary>RESTORED's process count.</summary>
    public Task<int> WaitRestoredAsync(CancellationToken cancellationToken) => _restored.Task.WaitAsync(cancellationToken);

    /// <summary>
    /// LAUNCH: returns the new process's vpid, and a task that completes if us-init reaps it
    /// (recorded from LAUNCHED on, so that even an immediate exit is seen).
    /// </summary>
    /// <exception cref="InitProcessException">us-init answered ERROR or is gone.</exception>
    public async Task<(int Vpid, Task<InitExited> Exit)> LaunchAsync(
        string app, string cwd, IReadOnlyDictionary<string, string> env, IReadOnlyList<string> argv,
        CancellationToken cancellationToken)
    {
        // LAUNCHED and ERROR carry no request id: one LAUNCH at a time keeps them paired.
        await _launchLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        var reply = NewSource<int>();
        try
        {
            lock (_sync)
            {
                _launch = reply;
            }
            if (HasExited)
            {
                throw Gone();
            }
            await WriteLineAsync(InitCommands.Launch(app, cwd, env, argv)).ConfigureAwait(false);
            var vpid = await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return (vpid, Reaped.WhenReaped(vpid));
        }
        finally
        {
            lock (_sync)
            {
                if (ReferenceEquals(_launch, reply))
                {
                    _launch = null;
                }
            }
            _launchLock.Release();
        }
    }

    /// <summary>QUIT, then SIGKILL if us-init has not exited within <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        _stopping = true;
        if (HasExited)
        {
            return;
        }
        try
        {
            await WriteLineAsync(InitCommands.Quit).ConfigureAwait(false);
            await _exited.Task.WaitAsync(grace).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is TimeoutException or InitProcessException)
        {
        }
        _logger.LogWarning("us-init of group {Group} did not quit within {Grace}; killing it", Group, grace);
        Kill();
        // SIGKILL ends a process at once unless the kernel holds one of its threads, and us-init,
        // PID 1 of the group's namespace, is gone only once all its processes are: name the wait.
        if (await Task.WhenAny(_exited.Task, Task.Delay(grace)).ConfigureAwait(false) != _exited.Task)
        {
            _logger.LogWarning("us-init of group {Group} still runs {Grace} after kill -9; what its processes wait on:\n{Waits}",
                Group, grace, ProcFs.DescribeNamespaceWaits(HostPid));
        }
        await _exited.Task.ConfigureAwait(false);
    }

    /// <summary>SIGKILL: as PID 1 of the group's pid namespace, it takes every member with it.</summary>
    public void Kill()
    {
        _stopping = true;
        _channel.Kill();
    }

    private async Task WriteLineAsync(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            var requests = _channel.Requests;
            await requests.WriteAsync(bytes).ConfigureAwait(false);
            await requests.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            throw Gone();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadReportsAsync()
    {
        try
        {
            await using var reader = new LineReader(_channel.Reports);
            while (await reader.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } line)
            {
                Dispatch(line);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            _logger.LogWarning("Reading us-init of group {Group} failed: {Error}", Group, e.Message);
        }

        var code = await _channel.WaitForExitAsync().ConfigureAwait(false);
        var gone = Gone(code);
        _ready.TrySetException(gone);
        _restored.TrySetException(gone);
        // Nobody may be waiting for these any more; observe them so they are not reported as lost.
        _ = _ready.Task.Exception;
        _ = _restored.Task.Exception;
        lock (_sync)
        {
            _launch?.TrySetException(gone);
        }
        _exited.TrySetResult(code ?? -1);
        _channel.Dispose();
        _sink.OnInitExited(this, code ?? -1, _stopping);
    }

    private void Dispatch(string line)
    {
        switch (InitMessageParser.Parse(line))
        {
            case InitReady ready:
                _ready.TrySetResult(ready.HostPid);
                break;
            case InitAttached attached when Adopted:
                ExitsLost = attached.ExitsLost;
                _ready.TrySetResult(_pid);
                break;
            case InitLaunched launched:
                Reaped.Launched(launched.Vpid);
                lock (_sync)
                {
                    if (_launch?.TrySetResult(launched.Vpid) != true)
                    {
                        _logger.LogWarning("us-init of group {Group} reported LAUNCHED {Vpid} that nobody asked for", Group, launched.Vpid);
                    }
                }
                break;
            case InitError error:
                OnError(error);
                break;
            case InitRestored restored:
                _restored.TrySetResult(restored.Count);
                break;
            case InitExited exited:
                Reaped.Record(exited);
                _sink.OnMemberExited(this, exited);
                break;
            default:
                _logger.LogWarning("us-init of group {Group} sent an unknown line: {Line}", Group, line);
                break;
        }
    }

    private void OnError(InitError error)
    {
        // Kept for the exit description: us-init usually says why before it gives up.
        _lastError = error.Reason;
        var failure = new InitProcessException(error.Reason);
        lock (_sync)
        {
            // ERROR answers the LAUNCH in flight; before READY it fails the start, and during a
            // restore it fails the restore.
            if (_launch?.TrySetException(failure) == true || _ready.TrySetException(failure))
            {
                return;
            }
        }
        if (Restoring && _restored.TrySetException(failure))
        {
            return;
        }
        _logger.LogWarning("us-init of group {Group} reported an error: {Reason}", Group, error.Reason);
    }

    /// <summary>How us-init ended, for error messages.</summary>
    public string DescribeExit() => Describe(_exited.Task.IsCompletedSuccessfully ? _exited.Task.Result : null);

    private InitProcessException Gone(int? code = null) =>
        new(code is null ? DescribeExit() : Describe(code));

    private string Describe(int? code)
    {
        var how = code switch
        {
            null or -1 => "us-init is gone",
            > 128 => $"us-init was killed by signal {code - 128}",
            _ => $"us-init exited with code {code}",
        };
        return _lastError is { } error ? $"{how} ({error})" : how;
    }

    private static TaskCompletionSource<T> NewSource<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
