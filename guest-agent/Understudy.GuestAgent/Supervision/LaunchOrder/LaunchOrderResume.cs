using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Restore;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.LaunchOrder;

/// <summary>
/// Resumes a restored group the way it is started: application by application in the policy's
/// launch order, each (its main process and its children) only once the one before met its
/// readiness condition. Processes of applications the policy does not name (added with hactl
/// launch) are resumed last.
/// </summary>
internal sealed class LaunchOrderResume : IResumeOrder
{
    private readonly GroupPolicy _policy;
    private readonly AppReadiness _readiness;
    private readonly IEventPublisher _events;
    private readonly Action<string, int> _resumed;

    /// <param name="resumed">told the main process of each application of the policy just before it is resumed</param>
    public LaunchOrderResume(GroupPolicy policy, AppReadiness readiness, IEventPublisher events, Action<string, int> resumed)
    {
        _policy = policy;
        _readiness = readiness;
        _events = events;
        _resumed = resumed;
    }

    /// <exception cref="NotReadyException">an application is not in the checkpoint, or was not ready in time.</exception>
    /// <exception cref="ResumeFailedException">a process did not resume.</exception>
    public async Task ResumeAsync(IReadOnlyList<Member> members, MemberResumer resumer, CancellationToken cancellationToken)
    {
        var mains = LaunchOrderStarter.MainProcesses(_policy, members);
        // Checked before anything runs: a missing application would only fail the restore later.
        if (_policy.Apps.FirstOrDefault(app => !mains.ContainsKey(app.Name)) is { } missing)
        {
            throw new NotReadyException($"{missing.Name} is not in the restored checkpoint");
        }

        foreach (var app in _policy.Apps)
        {
            var vpid = mains[app.Name];
            // Known before it runs: its death from now on is noticed as such.
            _resumed(app.Name, vpid);
            await ResumeAppAsync(app.Name, vpid, members.Where(m => m.App == app.Name).ToList(), resumer, cancellationToken).ConfigureAwait(false);
            await _readiness.WaitAsync(_policy.Group, app, vpid, cancellationToken).ConfigureAwait(false);
        }
        foreach (var others in members.Where(m => _policy.FindApp(m.App) is null).GroupBy(m => m.App))
        {
            var processes = others.ToList();
            await ResumeAppAsync(others.Key, processes.Min(m => m.Vpid), processes, resumer, cancellationToken).ConfigureAwait(false);
        }
    }

    // app.resumed goes out as soon as RESUME did: a process may die at once, before it answers,
    // and the event must still say that it was let run (the failure follows it).
    private Task ResumeAppAsync(string app, int vpid, IReadOnlyList<Member> processes, MemberResumer resumer, CancellationToken cancellationToken) =>
        resumer.ResumeAsync(processes, cancellationToken, sent: () => _events.Publish(new AppResumed(_policy.Group, app, vpid, processes.Count)));
}
