using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.LaunchOrder;

/// <summary>
/// Waits for one application, just launched or just resumed, to meet its readiness condition,
/// and announces it (app.ready): the step between two applications of the launch order.
/// </summary>
internal sealed class AppReadiness
{
    private readonly ReadinessWaiter _readiness;
    private readonly IEventPublisher _events;

    public AppReadiness(ReadinessWaiter readiness, IEventPublisher events)
    {
        _readiness = readiness;
        _events = events;
    }

    /// <exception cref="NotReadyException">it did not become ready in time, or it left.</exception>
    public async Task WaitAsync(string group, AppPolicy app, int vpid, CancellationToken cancellationToken)
    {
        var condition = await _readiness.WaitAsync(new ProbeTarget(group, app.Name, vpid), app.Ready, cancellationToken).ConfigureAwait(false);
        _events.Publish(new AppReady(group, app.Name, vpid, condition));
    }
}
