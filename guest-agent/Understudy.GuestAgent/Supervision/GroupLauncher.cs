using Understudy.GuestAgent.Events;
using Understudy.GuestAgent.Groups;
using Understudy.GuestAgent.Health;
using Understudy.GuestAgent.Launch;
using Understudy.GuestAgent.Policies;

namespace Understudy.GuestAgent.Supervision;

/// <summary>
/// Brings a group's applications up in launch order: each is launched only once every
/// application before it is ready. After a restore, where all of them came back at once, it
/// checks their readiness in the same order.
/// </summary>
internal sealed class GroupLauncher
{
    private readonly AvailabilityManager _availability;
    private readonly ReadinessWaiter _readiness;
    private readonly IEventPublisher _events;

    public GroupLauncher(AvailabilityManager availability, ReadinessWaiter readiness, IEventPublisher events)
    {
        _availability = availability;
        _readiness = readiness;
        _events = events;
    }

    /// <param name="launched">told each application's main process as soon as it registered</param>
    /// <returns>each application's main process (vpid)</returns>
    /// <exception cref="NotReadyException">an application did not become ready.</exception>
    /// <exception cref="Errors.AgentException">an application could not be launched.</exception>
    public async Task<IReadOnlyDictionary<string, int>> LaunchAllAsync(
        GroupPolicy policy, Action<string, int> launched, CancellationToken cancellationToken)
    {
        var vpids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var app in policy.Apps)
        {
            var spec = LaunchSpecFactory.Create(policy.Group, app.Name, app.Argv, app.Cwd, app.Env);
            var member = await _availability.LaunchAsync(spec, cancellationToken).ConfigureAwait(false);
            vpids[app.Name] = member.Vpid;
            launched(app.Name, member.Vpid);
            await WaitReadyAsync(policy.Group, app, member.Vpid, restored: false, cancellationToken).ConfigureAwait(false);
        }
        _events.Publish(new GroupStarted(policy.Group, policy.Apps.Select(a => a.Name).ToList()));
        return vpids;
    }

    /// <summary>After a restore: each application, in launch order, must meet its readiness condition.</summary>
    /// <exception cref="NotReadyException">an application is missing or not ready.</exception>
    public async Task VerifyReadyAsync(GroupPolicy policy, IReadOnlyDictionary<string, int> vpids, CancellationToken cancellationToken)
    {
        foreach (var app in policy.Apps)
        {
            if (!vpids.TryGetValue(app.Name, out var vpid))
            {
                throw new NotReadyException($"{app.Name} is not in the restored checkpoint");
            }
            await WaitReadyAsync(policy.Group, app, vpid, restored: true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The main process of each application among restored members: the one us-init launched
    /// (its parent is PID 1 of the group), the oldest if there are several.
    /// </summary>
    public static IReadOnlyDictionary<string, int> MainProcesses(GroupPolicy policy, IEnumerable<Member> members) =>
        members
            .Where(m => m.Vppid == 1 && policy.FindApp(m.App) is not null)
            .GroupBy(m => m.App)
            .ToDictionary(g => g.Key, g => g.Min(m => m.Vpid), StringComparer.Ordinal);

    private async Task WaitReadyAsync(string group, AppPolicy app, int vpid, bool restored, CancellationToken cancellationToken)
    {
        var condition = await _readiness.WaitAsync(new ProbeTarget(group, app.Name, vpid), app.Ready, restored, cancellationToken).ConfigureAwait(false);
        _events.Publish(new AppReady(group, app.Name, vpid, condition));
    }
}
