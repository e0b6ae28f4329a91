using Microsoft.Extensions.DependencyInjection;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Merging;

/// <summary>The agent's services for incremental checkpoints: the kind policy, the lineage, and the merges.</summary>
internal static class MergingServiceCollection
{
    /// <summary>Register after the state directory's initializer: the merge service's start cleans up what a killed agent left.</summary>
    public static IServiceCollection AddIncrementalCheckpoints(this IServiceCollection services)
    {
        services.AddSingleton<CheckpointLineage>();
        services.AddSingleton<CheckpointKindPolicy>();
        services.AddSingleton<MergeFaults>();
        services.AddSingleton<GroupStoreLocks>();
        services.AddSingleton<MergePauses>();
        services.AddSingleton<CheckpointMerger>();
        services.AddSingleton<MergeBeforeRestore>();
        services.AddSingleton<BackgroundMerges>();
        services.AddHostedService(provider => provider.GetRequiredService<BackgroundMerges>());
        return services;
    }
}
