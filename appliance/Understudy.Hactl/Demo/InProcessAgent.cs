using Understudy.GuestAgent;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Commands;
using Understudy.Hactl.Connection;

namespace Understudy.Hactl.Demo;

/// <summary>A guest agent running inside this process, on a private socket.</summary>
public sealed class InProcessAgent : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(15);

    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private InProcessAgent(AgentHostOptions options)
    {
        Endpoint = new AgentEndpoint(options.ListenSocket);
        _run = Task.Run(() => AgentHost.RunAsync(options, _stop.Token));
    }

    public AgentEndpoint Endpoint { get; }

    /// <summary>Starts the agent and waits until it answers a status call.</summary>
    public static async Task<InProcessAgent> StartAsync(AgentHostOptions options, CancellationToken ct)
    {
        var agent = new InProcessAgent(options);
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
        const string what = "cannot start the demo's agent";
        var deadline = DateTime.UtcNow + StartTimeout;
        using var client = AgentClient.Connect(Endpoint);
        while (true)
        {
            if (_run.IsCompleted)
            {
                var why = _run.Exception?.GetBaseException().Message is { } message
                    ? ErrorLine.Clause(message)
                    : "it stopped right after starting";
                throw new HactlException(what, why, "run 'hactl doctor' and check that ./build.sh completed");
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
                throw new HactlException(what, $"it did not answer on {Endpoint.Address} within {StartTimeout.TotalSeconds:0} s", "run 'hactl agent run' by hand to see its log");
            }

            await Task.Delay(100, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(StopTimeout);
        }
        catch (Exception)
        {
            // Stopping is best effort: the demo reports the step that failed, not the shutdown.
        }
        _stop.Dispose();
    }
}
