using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.MemberSocket;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Merging;
using Understudy.GuestAgent.Operations.Migration;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Api.Peers;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;
using Understudy.GuestAgent.Supervision.Supervisors;
using Understudy.Images;

namespace Understudy.GuestAgent.Hosting;

/// <summary>The agent's services, layer by layer (docs/architecture.md, "Layers of the guest agent").</summary>
internal static class AgentServices
{
    public static IServiceCollection AddAgentServices(this IServiceCollection services)
    {
        // Foundation
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(provider => new CheckpointStore(provider.GetRequiredService<IOptions<AgentOptions>>().Value.StateDir));
        services.AddSingleton<StatePaths>();
        services.AddSingleton<EventJournal>();
        services.AddSingleton<EventBus>();
        services.AddSingleton<IEventPublisher>(provider => provider.GetRequiredService<EventBus>());

        // Model
        services.AddSingleton<GroupRegistry>();
        services.AddSingleton<GroupLocator>();
        services.AddSingleton<GroupStatusQuery>();
        services.AddSingleton<InitCommandLine>();
        services.AddSingleton<MemberProtocol>();
        services.AddSingleton<IMemberMessageHandler>(provider => provider.GetRequiredService<MemberProtocol>());
        services.AddSingleton<MemberListener>();

        // Operations
        services.AddSingleton<MergeFaults>();
        services.AddSingleton<CheckpointMerger>();
        services.AddSingleton<CheckpointKeeper>();
        services.AddSingleton<BackgroundMerges>();
        services.AddSingleton<GroupLauncher>();
        services.AddSingleton<CheckpointLineage>();
        services.AddSingleton<CheckpointKindPolicy>();
        services.AddSingleton<ManifestBuilder>();
        services.AddSingleton<CheckpointCoordinator>();
        services.AddSingleton<GroupCheckpointer>();
        services.AddSingleton<RestoreCoordinator>();
        services.AddSingleton<GroupLifecycles>();
        services.AddSingleton<ReplicationFaults>();
        services.AddSingleton<ReplicaReceiver>();
        services.AddSingleton<StandbyAssignments>();
        services.AddSingleton<CheckpointSender>();
        services.AddSingleton<StandbyReplicator>();
        services.AddSingleton<MigrationHolds>();
        services.AddSingleton<MigrationFences>();
        services.AddSingleton<MigrationJournal>();
        services.AddSingleton<MigrationSettler>();
        services.AddSingleton<GroupMigrator>();
        services.AddSingleton<GroupTakeover>();

        // Supervision (docs/policy.md)
        services.AddSingleton<PolicyEnvironment>();
        services.AddSingleton<PolicyStore>();
        services.AddSingleton<PolicyCatalog>();
        services.AddSingleton<IRetentionPolicy, CheckpointRetention>();
        services.AddSingleton<IChainLengthPolicy, PolicyChainLength>();
        services.AddSingleton<ProbeRunner>();
        services.AddSingleton<ReadinessWaiter>();
        services.AddSingleton<LaunchOrderStarter>();
        services.AddSingleton<RecoveryPointSelector>();
        services.AddSingleton<IRecoveryDecider, LocalRecoveryDecider>();
        services.AddSingleton<GroupSupervisorFactory>();
        services.AddSingleton<SupervisorRegistry>();
        services.AddSingleton<PolicyApplier>();
        services.AddSingleton<IPolicyHandOver, PolicyHandOver>();
        services.AddSingleton<GroupOverview>();

        // Api: the links to the other nodes' agents (peer_services.proto's client and push
        // connections), and the receiving end of push connections
        services.AddSingleton<PeerLinks>();
        services.AddSingleton<PushConnectionHandler>();
        services.AddSingleton<IStandbyLinks>(provider => provider.GetRequiredService<PeerLinks>());

        // Started in this order (before Kestrel), stopped in reverse: the store is cleaned up
        // before anything uses it, and groups are stopped while the member socket still hears
        // their processes go.
        services.AddHostedService<StateDirectoryInitializer>();
        services.AddHostedService(provider => provider.GetRequiredService<BackgroundMerges>());
        services.AddHostedService(provider => provider.GetRequiredService<MemberListener>());
        // Once the member socket listens (their processes register again there): the groups
        // whose us-init outlived the previous agent are taken up.
        services.AddHostedService<RunningGroups>();
        // Then the migrations that were not settled when the last agent stopped: their groups stay frozen.
        services.AddHostedService(provider => provider.GetRequiredService<MigrationSettler>());
        // A held process that registers only after its migration was settled here runs on too.
        services.AddHostedService<LateHeldRelinks>();
        services.AddHostedService<GroupShutdownService>();
        // Streams the groups' checkpoints to their standby nodes; stopped before the groups are.
        services.AddHostedService(provider => provider.GetRequiredService<StandbyReplicator>());
        // Last: it starts the autostart groups once the member socket listens, and at shutdown
        // it stops supervising before GroupShutdownService stops the groups.
        services.AddHostedService(provider => provider.GetRequiredService<SupervisorRegistry>());
        return services;
    }
}
