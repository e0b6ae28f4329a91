using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Serilog;
using Understudy.GuestAgent.Api;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.MemberSocket;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Merging;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;
using Understudy.GuestAgent.Supervision.Supervisors;
using Understudy.Images;

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
            options.CopyFrom(hostOptions);
            tune?.Invoke(options);
        });
        builder.Services.Configure<HostOptions>(options => options.ShutdownTimeout = TimeSpan.FromSeconds(20));

        AddAgentServices(builder.Services);

        var socket = ApiSocketPath(hostOptions.ListenSocket);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenUnixSocket(socket, listen =>
        {
            listen.Protocols = HttpProtocols.Http2;
            var filterLogger = listen.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PeerCredentialFilter));
            listen.Use(PeerCredentialFilter.Create(filterLogger));
        }));
        builder.Services.AddGrpc(options => options.Interceptors.Add<ErrorMappingInterceptor>());

        var app = builder.Build();
        app.MapGrpcService<AgentService>();
        app.MapGrpcService<PolicyService>();
        return app;
    }

    /// <summary>hactl passes <c>unix:PATH</c> through in places; accept both spellings.</summary>
    public static string ApiSocketPath(string listenSocket) =>
        Path.GetFullPath(listenSocket.StartsWith("unix:", StringComparison.Ordinal) ? listenSocket["unix:".Length..] : listenSocket);

    private static void AddAgentServices(IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<StatePaths>();
        services.AddSingleton(provider => new CheckpointStore(provider.GetRequiredService<IOptions<AgentOptions>>().Value.StateDir));

        services.AddSingleton<EventJournal>();
        services.AddSingleton<EventBus>();
        services.AddSingleton<IEventPublisher>(provider => provider.GetRequiredService<EventBus>());

        services.AddSingleton<GroupRegistry>();
        services.AddSingleton<GroupLocator>();
        services.AddSingleton<GroupStatusQuery>();
        services.AddSingleton<MemberProtocol>();
        services.AddSingleton<IMemberMessageHandler>(provider => provider.GetRequiredService<MemberProtocol>());

        services.AddSingleton<InitCommandLine>();
        services.AddSingleton<GroupLauncher>();
        services.AddSingleton<ManifestBuilder>();
        services.AddSingleton<CheckpointCoordinator>();
        services.AddSingleton<RestoreCoordinator>();

        // The checkpoint store's one owner, and the merges (docs/image-format.md, "Merging").
        services.AddSingleton<CheckpointLineage>();
        services.AddSingleton<CheckpointKindPolicy>();
        services.AddSingleton<MergeFaults>();
        services.AddSingleton<CheckpointMerger>();
        services.AddSingleton<CheckpointKeeper>();
        services.AddSingleton<BackgroundMerges>();

        // Availability management (docs/policy.md).
        services.AddSingleton<PolicyEnvironment>();
        services.AddSingleton<PolicyStore>();
        services.AddSingleton<PolicyCatalog>();
        services.AddSingleton<IRetentionPolicy>(provider => provider.GetRequiredService<PolicyCatalog>());
        services.AddSingleton<ProbeRunner>();
        services.AddSingleton<ReadinessWaiter>();
        services.AddSingleton<GroupCheckpointer>();
        services.AddSingleton<LaunchOrderStarter>();
        services.AddSingleton<RecoveryPointSelector>();
        services.AddSingleton<RecoveryRunner>();
        services.AddSingleton<GroupSupervisorFactory>();
        services.AddSingleton<SupervisorRegistry>();
        services.AddSingleton<PolicyApplier>();
        services.AddSingleton<GroupOverview>();

        // Started in this order (before Kestrel), stopped in reverse: the store is cleaned up
        // before anything uses it, and groups are stopped while the member socket still hears
        // their processes go.
        services.AddHostedService<StateDirectoryInitializer>();
        services.AddHostedService(provider => provider.GetRequiredService<BackgroundMerges>());
        services.AddSingleton<MemberListener>();
        services.AddHostedService(provider => provider.GetRequiredService<MemberListener>());
        services.AddHostedService<GroupShutdownService>();
        // Last: it starts the autostart groups once the member socket listens, and at shutdown
        // it stops supervising before GroupShutdownService stops the groups.
        services.AddHostedService(provider => provider.GetRequiredService<SupervisorRegistry>());
    }
}
