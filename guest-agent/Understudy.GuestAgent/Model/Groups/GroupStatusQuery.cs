using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Members;
using Understudy.Images;

namespace Understudy.GuestAgent.Model.Groups;

internal sealed record MemberStatus(int Pid, int HostPid, string App, int ExecCount, string Program, string State, string Tracker);

internal sealed record GroupStatus(
    string Name, string State, IReadOnlyList<MemberStatus> Members, string? LastCheckpoint, int InitHostPid);

/// <summary>
/// What Status reports: the groups that run here, and the stopped ones that have checkpoints
/// on disk (which a restore could bring back).
/// </summary>
internal sealed class GroupStatusQuery
{
    private readonly GroupRegistry _groups;
    private readonly GroupLocator _locator;
    private readonly CheckpointStore _store;

    public GroupStatusQuery(GroupRegistry groups, GroupLocator locator, CheckpointStore store)
    {
        _groups = groups;
        _locator = locator;
        _store = store;
    }

    /// <param name="group">one group, or null/empty for all.</param>
    public IReadOnlyList<GroupStatus> Query(string? group)
    {
        IEnumerable<string> names;
        if (!string.IsNullOrEmpty(group))
        {
            GroupNames.Require(group);
            if (!_locator.Exists(group))
            {
                throw AgentException.NotFound($"unknown group {group}; see hactl status");
            }
            names = [group];
        }
        else
        {
            names = _groups.All()
                .Where(g => g.IsRunning || g.Gate.Mode != GateMode.Open)
                .Select(g => g.Name)
                .Concat(_store.List().Select(c => c.Group))
                .Distinct(StringComparer.Ordinal)
                .Order(StringComparer.Ordinal);
        }
        return names.Select(Describe).ToList();
    }

    private GroupStatus Describe(string name)
    {
        var group = _groups.Find(name);
        var members = group?.Members.Snapshot().Select(Describe).ToList() ?? [];
        var init = group?.Init;
        return new GroupStatus(
            name,
            group?.State ?? "stopped",
            members,
            _store.NewestId(name),
            init is { HasExited: false } ? init.HostPid : 0);
    }

    private static MemberStatus Describe(Member member) => new(
        member.Vpid,
        member.HostPid,
        member.App,
        member.ExecCount,
        ProcFs.ExecutablePath(member.HostPid),
        member.State.ToString().ToLowerInvariant(),
        member.Tracker);
}
