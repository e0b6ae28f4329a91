using System.ComponentModel;
using System.Diagnostics;
using System.Net.Sockets;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Health;

/// <summary>
/// Runs one probe of a readiness condition or health check against the node: TCP connect,
/// HTTP GET, a command (run by the agent, outside the group), a file's existence, or whether
/// the application's process is alive. A probe never throws for what it checks: it fails.
/// </summary>
internal sealed class ProbeRunner : IDisposable
{
    private readonly GroupRegistry _groups;
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public ProbeRunner(GroupRegistry groups)
    {
        _groups = groups;
    }

    public async Task<ProbeResult> RunAsync(ProbeSpec spec, ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return spec switch
            {
                TcpProbeSpec tcp => await ConnectAsync(tcp, deadline.Token).ConfigureAwait(false),
                HttpProbeSpec http => await GetAsync(http, deadline.Token).ConfigureAwait(false),
                CommandProbeSpec command => await RunCommandAsync(command, deadline.Token).ConfigureAwait(false),
                FileProbeSpec file => File.Exists(file.Path) || Directory.Exists(file.Path)
                    ? ProbeResult.Pass($"{file.Path} exists")
                    : ProbeResult.Fail($"{file.Path} does not exist"),
                AliveProbeSpec => Alive(target),
                _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Kind, "not a probe that can run"),
            };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ProbeResult.Fail($"no answer within {Durations.Describe(timeout)}");
        }
    }

    public void Dispose() => _http.Dispose();

    private static async Task<ProbeResult> ConnectAsync(TcpProbeSpec tcp, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(tcp.Host, tcp.Port, cancellationToken).ConfigureAwait(false);
            return ProbeResult.Pass($"connected to {tcp.Host}:{tcp.Port}");
        }
        catch (SocketException e)
        {
            return ProbeResult.Fail($"{tcp.Host}:{tcp.Port}: {e.Message}");
        }
    }

    private async Task<ProbeResult> GetAsync(HttpProbeSpec http, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.GetAsync(http.Url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            return status < 400 ? ProbeResult.Pass($"HTTP {status}") : ProbeResult.Fail($"HTTP {status}");
        }
        catch (HttpRequestException e)
        {
            return ProbeResult.Fail(AgentException.OneLine(e.Message));
        }
    }

    private static async Task<ProbeResult> RunCommandAsync(CommandProbeSpec command, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(command.Argv[0])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in command.Argv.Skip(1))
        {
            startInfo.ArgumentList.Add(arg);
        }
        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return ProbeResult.Fail($"cannot run {command.Argv[0]}: {e.Message}");
        }
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        await Task.WhenAll(output, errors).ConfigureAwait(false);
        var said = LastLine(await errors.ConfigureAwait(false)) ?? LastLine(await output.ConfigureAwait(false));
        var detail = $"exit code {process.ExitCode}{(said is null ? "" : $": {said}")}";
        return process.ExitCode == 0 ? ProbeResult.Pass(detail) : ProbeResult.Fail(detail);
    }

    private ProbeResult Alive(ProbeTarget target)
    {
        if (_groups.Find(target.Group)?.Members.Find(target.Vpid) is not { } member)
        {
            return ProbeResult.Fail($"process {target.Vpid} is no longer a member");
        }
        if (!ProcFs.IsRunning(member.HostPid))
        {
            return ProbeResult.Fail($"process {target.Vpid} (host pid {member.HostPid}) is gone");
        }
        // Stopped, or stuck in the kernel: it exists, but runs no more than a hung one does.
        var condition = MemberLiveness.Check(member, TimeProvider.System);
        return condition == MemberCondition.Able
            ? ProbeResult.Pass($"process {target.Vpid} (host pid {member.HostPid}) is alive")
            : ProbeResult.Fail(MemberLiveness.Describe(member, condition));
    }

    private static string? LastLine(string text)
    {
        var line = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        return line is null ? null : line.Length <= 200 ? line : line[..200] + "...";
    }
}
