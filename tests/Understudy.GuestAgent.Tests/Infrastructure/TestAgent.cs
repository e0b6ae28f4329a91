using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Hosting;
using Understudy.GuestAgent.Model.Groups;
using Understudy.Images;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>
/// A real guest agent in this process, with its own state directory, member socket and API
/// socket. Disposing stops it and removes everything it created.
/// </summary>
internal sealed class TestAgent : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Logger _logger;
    private readonly bool _ownsRoot;

    private TestAgent(string root, WebApplication app, Logger logger, string apiSocket, bool ownsRoot)
    {
        Root = root;
        _app = app;
        _logger = logger;
        ApiSocket = apiSocket;
        _ownsRoot = ownsRoot;
        Api = new AgentApiClient(apiSocket);
    }

    /// <summary>Short on purpose: Unix socket paths are limited to 107 bytes.</summary>
    public string Root { get; }

    public string StateDir => Path.Combine(Root, "state");

    public string CoordSocket => Path.Combine(StateDir, "coord.sock");

    public string ApiSocket { get; }

    public AgentApiClient Api { get; }

    public IServiceProvider Services => _app.Services;

    public GroupRegistry Groups => Services.GetRequiredService<GroupRegistry>();

    public CheckpointStore Store => Services.GetRequiredService<CheckpointStore>();

    /// <param name="root">
    /// an existing directory whose state/ to use, as an agent started again after a crash does;
    /// the caller removes it. By default a fresh one, removed on dispose.
    /// </param>
    public static async Task<TestAgent> StartAsync(
        ITestOutputHelper output, Action<AgentOptions>? tune = null, string? nativeDir = null, string? interceptorPath = null,
        string? root = null)
    {
        var ownsRoot = root is null;
        root ??= NewRoot();
        Directory.CreateDirectory(root);
        var apiSocket = Path.Combine(root, "api.sock");
        var logger = new LoggerConfiguration()
            .MinimumLevel.Debug()
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
            .WriteTo.Sink(new TestOutputSink(output))
            .CreateLogger();
        var options = new AgentHostOptions
        {
            ListenSocket = apiSocket,
            StateDir = Path.Combine(root, "state"),
            NativeDir = nativeDir ?? Path.Combine(root, "no-native"),
            InterceptorPath = interceptorPath ?? Path.Combine(root, "no-native", "libunderstudy.so"),
        };
        var app = AgentApplication.Build(options, logger, tune);
        await app.StartAsync();
        return new TestAgent(root, app, logger, apiSocket, ownsRoot);
    }

    /// <summary>A fresh directory for an agent's sockets and state.</summary>
    public static string NewRoot() => Path.Combine("/tmp", "usga-" + Guid.NewGuid().ToString("N")[..10]);

    public Group Group(string name) => Groups.Find(name) ?? throw new InvalidOperationException($"no group {name}");

    public string StagingDir(string group) => Path.Combine(StateDir, "groups", group, "staging");

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _logger.DisposeAsync();
        if (_ownsRoot)
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    /// <summary>The agent's log in the test's output, shown when a test fails.</summary>
    private sealed class TestOutputSink(ITestOutputHelper output) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            try
            {
                output.WriteLine($"{logEvent.Timestamp:HH:mm:ss.fff} {logEvent.Level} {logEvent.RenderMessage()}{(logEvent.Exception is null ? "" : " " + logEvent.Exception)}");
            }
            catch (InvalidOperationException)
            {
                // The test is over.
            }
        }
    }
}
