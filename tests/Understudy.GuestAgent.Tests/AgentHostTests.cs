using Understudy.GuestAgent.Tests.Infrastructure;

namespace Understudy.GuestAgent.Tests;

/// <summary>The public entry point hactl calls: start, serve, stop cleanly.</summary>
public sealed class AgentHostTests : IDisposable
{
    private readonly string _root = Path.Combine("/tmp", "usgh-" + Guid.NewGuid().ToString("N")[..10]);

    public AgentHostTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private AgentHostOptions Options(string socketDir = "run") => new()
    {
        ListenSocket = Path.Combine(_root, socketDir, "agent.sock"),
        StateDir = Path.Combine(_root, "state"),
        NativeDir = Path.Combine(_root, "native"),
        InterceptorPath = Path.Combine(_root, "native", "libunderstudy.so"),
    };

    [Fact]
    public async Task Runs_until_cancelled_and_cleans_up_its_sockets()
    {
        var options = Options();
        // What a crashed agent left behind: a staging checkpoint that never committed.
        var staging = Directory.CreateDirectory(Path.Combine(options.StateDir, "groups", "web", "staging", "000007"));
        File.WriteAllText(Path.Combine(staging.FullName, "2.meta"), "partial");
        using var stop = new CancellationTokenSource();

        var run = AgentHost.RunAsync(options, stop.Token);
        await Eventually.TrueAsync(() => File.Exists(options.ListenSocket) || run.IsCompleted, "the agent listens");
        Assert.False(run.IsCompleted);
        using (var client = new AgentApiClient(options.ListenSocket))
        {
            Assert.Empty((await client.StatusAsync()).Groups);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(options.ListenSocket));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            File.GetUnixFileMode(Path.GetDirectoryName(options.ListenSocket)!));
        Assert.False(staging.Exists && Directory.Exists(staging.FullName));

        await stop.CancelAsync();
        await run;
        Assert.False(File.Exists(Path.Combine(options.StateDir, "coord.sock")));
        Assert.False(File.Exists(options.ListenSocket));
    }

    [Fact]
    public async Task A_second_agent_on_the_same_socket_is_refused()
    {
        var options = Options();
        using var stop = new CancellationTokenSource();
        var first = AgentHost.RunAsync(options, stop.Token);
        await Eventually.TrueAsync(() => File.Exists(options.ListenSocket) || first.IsCompleted, "the first agent listens");

        var error = await Assert.ThrowsAnyAsync<Exception>(() => AgentHost.RunAsync(options, CancellationToken.None));

        Assert.Contains("already listening on", error.Message);
        await stop.CancelAsync();
        await first;
    }

    [Fact]
    public async Task A_socket_left_by_a_dead_agent_is_replaced()
    {
        var options = Options();
        Directory.CreateDirectory(Path.GetDirectoryName(options.ListenSocket)!);
        using (var stale = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, 0))
        {
            stale.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(options.ListenSocket));
        }
        using var stop = new CancellationTokenSource();

        var run = AgentHost.RunAsync(options, stop.Token);
        using var client = new AgentApiClient(options.ListenSocket);
        await Eventually.TrueAsync(() => run.IsCompleted || Answers(client), "the agent answers");

        Assert.False(run.IsCompleted);
        await stop.CancelAsync();
        await run;
    }

    private static bool Answers(AgentApiClient client)
    {
        try
        {
            client.StatusAsync().GetAwaiter().GetResult();
            return true;
        }
        catch (Grpc.Core.RpcException)
        {
            return false;
        }
    }
}
