using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Understudy.GuestAgent.Api;
using Understudy.GuestAgent.Api.Peers;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Peers;
using Understudy.GuestAgent.Foundation.Configuration;

namespace Understudy.GuestAgent.Hosting;

/// <summary>Composes the agent: its services, the member socket and the gRPC API on Kestrel.</summary>
internal static class AgentApplication
{
    /// <param name="tune">lets tests shorten the protocol's grace periods.</param>
    public static WebApplication Build(AgentHostOptions hostOptions, Serilog.ILogger logger, Action<AgentOptions>? tune = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(AgentApplication).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        // The agent is configured by AgentHostOptions alone, not by files or variables that
        // happen to be around (appsettings.json, ASPNETCORE_URLS).
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSerilog(logger, dispose: false);

        builder.Services.Configure<AgentOptions>(options =>
        {
            CopyTo(options, hostOptions);
            tune?.Invoke(options);
        });
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(20));

        builder.Services.AddAgentServices();
        var membership = ClusterMembership.Load(new AgentOptions { Node = hostOptions.Node, ClusterDir = hostOptions.ClusterDir });
        builder.Services.AddSingleton(membership);

        var socket = ApiSocketPath(hostOptions.ListenSocket);
        var deadlines = new PeerDeadlines(hostOptions.PeerTimeout);
        // The slim builder leaves TLS out; the peer endpoint needs it.
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ListenUnixSocket(socket, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(PeerCredentialFilter.Create());
            });
            if (hostOptions.PeerListen is { } peerListen)
            {
                PeerEndpoint.Listen(kestrel, peerListen, membership.Credentials
                    ?? throw AgentException.InvalidArgument("--peer-listen needs --node and --cluster"), deadlines, logger);
            }
            kestrel.Limits.Http2.InitialConnectionWindowSize = 16 << 20;
            kestrel.Limits.Http2.InitialStreamWindowSize = 8 << 20;
            kestrel.Limits.Http2.MaxFrameSize = 1 << 20;
            // A peer cut off sends no reset: pings find the dead connection, so that a takeover's
            // call sees its caller gone (pushes have connections of their own: PeerSockets).
            kestrel.Limits.Http2.KeepAlivePingDelay = deadlines.ServePingDelay;
            kestrel.Limits.Http2.KeepAlivePingTimeout = deadlines.ServePingTimeout;
        });
        builder.Services.AddGrpc(options =>
        {
            options.Interceptors.Add<PeerCheckInterceptor>();
            options.Interceptors.Add<ErrorMappingInterceptor>();
            options.MaxReceiveMessageSize = 16 << 20;
        });

        var app = builder.Build();
        app.MapGrpcService<AgentService>();
        app.MapGrpcService<PolicyService>();
        app.MapGrpcService<MigrationService>();
        app.MapGrpcService<ReplicationService>();
        app.MapGrpcService<TakeoverService>();
        return app;
    }

    /// <summary>hactl passes <c>unix:PATH</c> through in places; accept both spellings.</summary>
    public static string ApiSocketPath(string listenSocket) =>
        Path.GetFullPath(listenSocket.StartsWith("unix:", StringComparison.Ordinal) ? listenSocket["unix:".Length..] : listenSocket);

    private static void CopyTo(AgentOptions options, AgentHostOptions host)
    {
        options.ListenSocket = host.ListenSocket;
        options.StateDir = Path.GetFullPath(host.StateDir);
        options.NativeDir = Path.GetFullPath(host.NativeDir);
        options.InterceptorPath = Path.GetFullPath(host.InterceptorPath);
        options.PrepareTimeout = host.PrepareTimeout;
        options.WriteTimeout = host.WriteTimeout;
        options.CaptureTimeout = host.CaptureTimeout;
        options.RestoreTimeout = host.RestoreTimeout;
        options.FullEvery = host.FullEvery;
        options.ChainLimitPercent = host.ChainLimitPercent;
        options.BackgroundMerges = host.BackgroundMerges;
        options.KeepGroups = host.KeepGroups;
        options.Retention = host.Retention;
        options.Node = host.Node;
        options.ClusterDir = host.ClusterDir is null ? null : Path.GetFullPath(host.ClusterDir);
        options.PeerListen = host.PeerListen;
        options.Peers = host.Peers;
        options.PeerDeadlines = new PeerDeadlines(host.PeerTimeout);
        options.MigrationResolveTimeout = host.MigrationResolveTimeout;
    }
}
