using Understudy.GuestAgent.Model.Groups;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>A group as Status shows it: its processes, and its supervisor's state (if it has a policy).</summary>
internal sealed record GroupOverviewEntry(GroupStatus Status, SupervisorSnapshot? Supervision);

/// <summary>
/// Status of every group: the running ones and those with checkpoints (GroupStatusQuery), plus
/// every group that has a policy, even one that never ran or failed before its first checkpoint.
/// </summary>
internal sealed class GroupOverview
{
    private readonly GroupStatusQuery _status;
    private readonly SupervisorRegistry _supervisors;

    public GroupOverview(GroupStatusQuery status, SupervisorRegistry supervisors)
    {
        _status = status;
        _supervisors = supervisors;
    }

    /// <param name="group">one group, or null/empty for all</param>
    public IReadOnlyList<GroupOverviewEntry> Query(string? group)
    {
        var statuses = _status.Query(group).ToList();
        if (string.IsNullOrEmpty(group))
        {
            var listed = statuses.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            statuses.AddRange(_supervisors.All().Where(s => !listed.Contains(s.Group)).SelectMany(s => _status.Query(s.Group)));
        }
        return statuses
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .Select(s => new GroupOverviewEntry(s, _supervisors.Find(s.Name)?.Snapshot()))
            .ToList();
    }
}
