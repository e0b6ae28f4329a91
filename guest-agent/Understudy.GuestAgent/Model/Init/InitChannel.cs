using System.ComponentModel;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>
/// How the agent reaches one us-init: the pipes of the process it started, or a connection on
/// the group's control socket to a us-init a previous agent started (docs/protocol.md, "Group
/// init control"). The same lines go both ways.
/// </summary>
internal abstract class InitChannel : IDisposable
{
    /// <summary>Where the agent writes its requests.</summary>
    public abstract Stream Requests { get; }

    /// <summary>Where us-init's lines come from; it ends when us-init is gone.</summary>
    public abstract Stream Reports { get; }

    /// <summary>Once the reports ended: us-init's exit code, or null when the agent cannot know it.</summary>
    public abstract Task<int?> WaitForExitAsync();

    /// <summary>SIGKILL: as PID 1 of the group's pid namespace, it takes every member with it.</summary>
    public abstract void Kill();

    public abstract void Dispose();
}

/// <summary>us-init as this agent started it: its stdin and stdout; stderr is logged.</summary>
internal sealed class PipeInitChannel : InitChannel
{
    private readonly Process _process;

    private PipeInitChannel(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    public override Stream Requests => _process.StandardInput.BaseStream;

    public override Stream Reports => _process.StandardOutput.BaseStream;

    /// <exception cref="InitProcessException">the program could not be started.</exception>
    public static PipeInitChannel Start(string group, ProcessStartInfo startInfo, ILogger logger)
    {
        startInfo.UseShellExecute = false;
        startInfo.RedirectStandardInput = true;
        startInfo.RedirectStandardOutput = true;
        startInfo.RedirectStandardError = true;
        var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            process.Dispose();
            throw new InitProcessException($"cannot start {startInfo.FileName}: {e.Message}");
        }
        _ = Task.Run(() => LogStderrAsync(process, group, logger));
        return new PipeInitChannel(process);
    }

    public override async Task<int?> WaitForExitAsync()
    {
        await _process.WaitForExitAsync().ConfigureAwait(false);
        return _process.ExitCode;
    }

    public override void Kill()
    {
        try
        {
            _process.Kill();
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception)
        {
            // Already gone.
        }
    }

    public override void Dispose() => _process.Dispose();

    private static async Task LogStderrAsync(Process process, string group, ILogger logger)
    {
        // us-init logs to --log; anything on stderr is unexpected and worth seeing.
        try
        {
            await using var reader = new LineReader(process.StandardError.BaseStream);
            while (await reader.ReadLineAsync(CancellationToken.None).ConfigureAwait(false) is { } line)
            {
                logger.LogWarning("us-init of group {Group}: {Line}", group, line);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }
}

/// <summary>
/// A us-init that outlived the agent that started it, reached on its control socket. Its pid
/// is the listening process's, as SO_PEERCRED tells it: the group's PID 1 as the host sees it.
/// </summary>
internal sealed class SocketInitChannel : InitChannel
{
    private const int SigKill = 9;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    private SocketInitChannel(Socket socket, int hostPid)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        HostPid = hostPid;
    }

    public int HostPid { get; }

    public override Stream Requests => _stream;

    public override Stream Reports => _stream;

    /// <summary>Connects to <paramref name="path"/>; null when nothing listens there (the us-init is gone).</summary>
    public static SocketInitChannel? Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            var peer = PeerCredentials.Of(socket);
            if (!peer.IsTrusted || peer.Pid <= 0)
            {
                socket.Dispose();
                return null;
            }
            return new SocketInitChannel(socket, peer.Pid);
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    // The group's PID 1 closes the socket only as it dies; its exit status went to its parent.
    public override Task<int?> WaitForExitAsync() => Task.FromResult<int?>(null);

    public override void Kill() => Libc.Kill(HostPid, SigKill);

    public override void Dispose()
    {
        _stream.Dispose();
        _socket.Dispose();
    }
}
