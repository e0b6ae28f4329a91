using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.LaunchOrder;

/// <summary>A group that runs: each application's main process, and the restore it came from (null: launched fresh).</summary>
internal sealed record RunningGroup(IReadOnlyDictionary<string, int> MainVpids, RestoreOutcome? Restore)
{
    /// <summary>The checkpoint it was restored from; null when it was launched fresh.</summary>
    public string? CheckpointId => Restore?.Id;
}

/// <summary>
/// Brings a group's applications up in launch order, each only once every application before it
/// is ready: launched fresh, or restored from a checkpoint and resumed app by app. Runs inside the
/// group's exclusive lifecycle work (<see cref="LifecycleScope"/>), so nothing interleaves.
/// </summary>
internal sealed class LaunchOrderStarter
{
    private readonly AppReadiness _readiness;
    private readonly IEventPublisher _events;

    public LaunchOrderStarter(ReadinessWaiter readiness, IEventPublisher events)
    {
        _readiness = new AppReadiness(readiness, events);
        _events = events;
    }

    /// <param name="launched">told each application's main process as soon as it registered</param>
    /// <exception cref="NotReadyException">an application did not become ready.</exception>
    /// <exception cref="Foundation.Errors.AgentException">an application could not be launched.</exception>
    public async Task<RunningGroup> LaunchAsync(
        LifecycleScope scope, GroupPolicy policy, Action<string, int> launched, CancellationToken cancellationToken)
    {
        var vpids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var app in policy.Apps)
        {
            var spec = LaunchSpecFactory.Create(policy.Group, app.Name, app.Argv, app.Cwd, EnvironmentOf(policy, app));
            var member = await scope.LaunchAsync(spec, cancellationToken).ConfigureAwait(false);
            vpids[app.Name] = member.Vpid;
            launched(app.Name, member.Vpid);
            await _readiness.WaitAsync(policy.Group, app, member.Vpid, cancellationToken).ConfigureAwait(false);
        }
        _events.Publish(new GroupStarted(policy.Group, policy.Apps.Select(a => a.Name).ToList()));
        return new RunningGroup(vpids, Restore: null);
    }

    /// <summary>Stops whatever is left of the group, then launches it fresh.</summary>
    public async Task<RunningGroup> RestartAsync(
        LifecycleScope scope, GroupPolicy policy, Action<string, int> launched, CancellationToken cancellationToken)
    {
        await scope.StopAsync().ConfigureAwait(false);
        return await LaunchAsync(scope, policy, launched, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Restores the group from a checkpoint (the ordinary restore path) and resumes it app by app
    /// in launch order, each once the one before is ready.
    /// </summary>
    /// <param name="checkpointId">null or empty: the newest</param>
    /// <param name="resumed">told each application's main process just before it is resumed</param>
    public async Task<RunningGroup> RestoreAsync(
        LifecycleScope scope, GroupPolicy policy, string? checkpointId, Action<string, int> resumed, CancellationToken cancellationToken)
    {
        var order = new LaunchOrderResume(policy, _readiness, _events, resumed);
        var outcome = await scope.RestoreAsync(checkpointId, order, cancellationToken).ConfigureAwait(false);
        return new RunningGroup(MainProcesses(policy, outcome.Members), outcome);
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
}
