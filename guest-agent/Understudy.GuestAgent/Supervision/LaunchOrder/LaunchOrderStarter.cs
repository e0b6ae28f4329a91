using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.LaunchOrder;

/// <summary>
/// Brings a group's applications up in launch order, each only once every application before
/// it is ready: launched fresh, or, after a restore, resumed (<see cref="ResumeInLaunchOrder"/>).
/// </summary>
internal sealed class LaunchOrderStarter
{
    private readonly GroupLauncher _availability;
    private readonly AppReadiness _readiness;
    private readonly IEventPublisher _events;

    public LaunchOrderStarter(GroupLauncher availability, ReadinessWaiter readiness, IEventPublisher events)
    {
        _availability = availability;
        _readiness = new AppReadiness(readiness, events);
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
            var spec = LaunchSpecFactory.Create(policy.Group, app.Name, app.Argv, app.Cwd, EnvironmentOf(policy, app));
            var member = await _availability.LaunchAsync(spec, cancellationToken).ConfigureAwait(false);
            vpids[app.Name] = member.Vpid;
            launched(app.Name, member.Vpid);
            await _readiness.WaitAsync(policy.Group, app, member.Vpid, cancellationToken).ConfigureAwait(false);
        }
        _events.Publish(new GroupStarted(policy.Group, policy.Apps.Select(a => a.Name).ToList()));
        return vpids;
    }

    /// <summary>The app's environment, with the group's page compression unless the app sets its own.</summary>
    private static IReadOnlyDictionary<string, string> EnvironmentOf(GroupPolicy policy, AppPolicy app)
    {
        const string Compress = "UNDERSTUDY_COMPRESS";
        if (policy.Checkpoints.Compression == "none" || app.Env.ContainsKey(Compress))
        {
            return app.Env;
        }
        return new Dictionary<string, string>(app.Env, StringComparer.Ordinal) { [Compress] = policy.Checkpoints.Compression };
    }

    /// <summary>How a restore of the group resumes it: app by app in launch order, each once the one before is ready.</summary>
    /// <param name="resumed">told each application's main process just before it is resumed</param>
    public IResumeOrder ResumeInLaunchOrder(GroupPolicy policy, Action<string, int> resumed) =>
        new LaunchOrderResume(policy, _readiness, _events, resumed);

    /// <summary>
    /// The main process of each application among restored members: the one us-init launched
    /// (its parent is PID 1 of the group), the oldest if there are several.
    /// </summary>
    public static IReadOnlyDictionary<string, int> MainProcesses(GroupPolicy policy, IEnumerable<Member> members) =>
        members
            .Where(m => m.Vppid == 1 && policy.FindApp(m.App) is not null)
            .GroupBy(m => m.App)
            .ToDictionary(g => g.Key, g => g.Min(m => m.Vpid), StringComparer.Ordinal);
}
