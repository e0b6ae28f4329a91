using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Members;
using Understudy.Images;

namespace Understudy.GuestAgent.Model.Groups;

internal sealed record MemberStatus(int Pid, int HostPid, string App, int ExecCount, string Program, string State, string Tracker);

/// <summary>A process of the group that is not a member: not protected (not in a checkpoint).</summary>
internal sealed record UnprotectedProcess(int Pid, int HostPid, string Program);

/// <param name="Processes">every process of the group (its us-init left out), registered or not; 0 when stopped</param>
/// <param name="Unprotected">the group's processes that are not members (still registering, a static program, a member that lost its link)</param>
internal sealed record GroupStatus(
    string Name, string State, IReadOnlyList<MemberStatus> Members, string? LastCheckpoint, int InitHostPid,
    int Processes, IReadOnlyList<UnprotectedProcess> Unprotected);

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
        var members = group?.Members.Snapshot() ?? [];
        var init = group?.Init;
        var initHostPid = init is { HasExited: false } ? init.HostPid : 0;
        // The processes of the group's pid namespace, not the member table alone: a process that
        // never registered or lost its link runs unprotected, and says so.
        var processes = initHostPid > 0 ? ProcFs.ProcessesInNamespaceOf(initHostPid) : [];
        var registered = members.Select(m => m.HostPid).ToHashSet();
        var unprotected = processes.Where(p => !registered.Contains(p))
            .Select(p => new UnprotectedProcess(ProcFs.InnermostPid(p), p, ProcFs.ExecutablePath(p)))
            .ToList();
        var state = group?.State ?? "stopped";
        if (state == "running" && initHostPid > 0)
        {
            state = processes.Count == 0 ? "empty" : unprotected.Count > 0 ? "unprotected" : "running";
        }
        return new GroupStatus(
            name, state, members.Select(Describe).ToList(), _store.NewestId(name), initHostPid, processes.Count, unprotected);
    }

    private static MemberStatus Describe(Member member) => new(
        member.Vpid,
        member.HostPid,
        member.App,
        member.ExecCount,
        ProcFs.ExecutablePath(member.HostPid),
        StateOf(member),
        member.Tracker);

    /// <summary>running, frozen or exec; a running member the kernel shows stopped or stuck says so (stopped, uninterruptible).</summary>
    private static string StateOf(Member member) =>
        member.State == MemberState.Running && MemberLiveness.StatusWord(MemberLiveness.Check(member, TimeProvider.System)) is { } stuck
            ? stuck
            : member.State.ToString().ToLowerInvariant();
}
