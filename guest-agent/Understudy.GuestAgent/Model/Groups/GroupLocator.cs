using Understudy.GuestAgent.Foundation.Errors;
using Understudy.Images;

namespace Understudy.GuestAgent.Model.Groups;

/// <summary>
/// Finds a group that must be running, and otherwise says why not: unknown, or stopped with
/// checkpoints that a restore could bring back.
/// </summary>
internal sealed class GroupLocator
{
    private readonly GroupRegistry _groups;
    private readonly CheckpointStore _store;

    public GroupLocator(GroupRegistry groups, CheckpointStore store)
    {
        _groups = groups;
        _store = store;
    }

    public Group RequireRunning(string name)
    {
        GroupNames.Require(name);
        if (_groups.Find(name) is { IsRunning: true } group)
        {
            return group;
        }
        if (HasCheckpoints(name))
        {
            throw AgentException.FailedPrecondition($"group {name} is stopped; bring it back with: hactl restore {name}");
        }
        throw AgentException.NotFound($"unknown group {name}; start it with: hactl launch {name} -- COMMAND");
    }

    /// <summary>Whether the group is known at all: in memory, or on disk with checkpoints.</summary>
    public bool Exists(string name) => _groups.Find(name) is not null || HasCheckpoints(name);

    public bool HasCheckpoints(string name) => _store.List(name).Count > 0;
}
