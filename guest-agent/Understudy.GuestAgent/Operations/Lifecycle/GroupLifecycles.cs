using System.Collections.Concurrent;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Restore;

namespace Understudy.GuestAgent.Operations.Lifecycle;

/// <summary>The lifecycle of each group, one per group name, made when first asked for.</summary>
internal sealed class GroupLifecycles(
    GroupRegistry groups, GroupLocator locator, GroupLauncher launcher, RestoreCoordinator restores, GroupCheckpointer checkpoints)
{
    private readonly ConcurrentDictionary<string, GroupLifecycle> _lifecycles = new(StringComparer.Ordinal);

    /// <exception cref="AgentException">InvalidArgument: not a valid group name.</exception>
    public GroupLifecycle For(string group) =>
        _lifecycles.GetOrAdd(GroupNames.Require(group), name => new GroupLifecycle(name, groups, locator, launcher, restores, checkpoints));

    /// <summary>The group's lifecycle if one was made, without making one.</summary>
    public GroupLifecycle? Find(string group) => _lifecycles.TryGetValue(group, out var lifecycle) ? lifecycle : null;

    /// <summary>On shutdown: every group is stopped, without waiting for the operations in progress (they fail as their processes go).</summary>
    public Task StopAllAsync() => launcher.StopAllAsync();
}
