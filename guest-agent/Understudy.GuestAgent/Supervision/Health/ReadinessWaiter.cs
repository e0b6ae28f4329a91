using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Health;

/// <summary>An application did not become ready: the reason says which condition and what was seen last.</summary>
/// <param name="exited">it is gone, rather than still not ready</param>
internal sealed class NotReadyException(string message, bool exited = false) : Exception(message)
{
    public bool Exited { get; } = exited;
}

/// <summary>
/// Waits until an application, just launched or just resumed, meets its readiness condition
/// (docs/policy.md, "ready"), polling it, at most for its timeout. The application must stay a
/// member meanwhile; if it leaves, the reason says how it ended ("was killed by signal 6").
/// </summary>
internal sealed class ReadinessWaiter
{
    private readonly ProbeRunner _probes;
    private readonly GroupRegistry _groups;
    private readonly TimeProvider _time;

    public ReadinessWaiter(ProbeRunner probes, GroupRegistry groups, TimeProvider time)
    {
        _probes = probes;
        _groups = groups;
        _time = time;
    }

    /// <returns>what made it ready, for the event</returns>
    /// <exception cref="NotReadyException">the condition did not hold in time, or the application left.</exception>
    public async Task<string> WaitAsync(ProbeTarget target, ReadinessCheck? ready, CancellationToken cancellationToken)
    {
        switch (ready)
        {
            case null:
                await RequireMemberAsync(target, "registered", cancellationToken).ConfigureAwait(false);
                return "registered";
            case { Probe: DelayProbeSpec delay }:
                await Task.Delay(delay.Delay, _time, cancellationToken).ConfigureAwait(false);
                await RequireMemberAsync(target, delay.Describe(), cancellationToken).ConfigureAwait(false);
                return delay.Describe();
        }

        var deadline = _time.GetUtcNow() + ready.Timeout;
        var last = ProbeResult.Fail("not checked yet");
        while (true)
        {
            await RequireMemberAsync(target, $"{ready.Probe.Describe()}, last: {last.Detail}", cancellationToken).ConfigureAwait(false);
            var left = deadline - _time.GetUtcNow();
            if (left > TimeSpan.Zero)
            {
                last = await _probes.RunAsync(ready.Probe, target, Min(left, ready.Timeout), cancellationToken).ConfigureAwait(false);
                if (last.Passed)
                {
                    return $"{ready.Probe.Describe()}: {last.Detail}";
                }
            }
            if (_time.GetUtcNow() >= deadline)
            {
                throw new NotReadyException(
                    $"{target.App} was not ready within {Durations.Describe(ready.Timeout)}: {ready.Probe.Describe()}: {last.Detail}");
            }
            await Task.Delay(Min(ready.Interval, deadline - _time.GetUtcNow()), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <exception cref="NotReadyException">the application is no longer a member: it says how it ended, as us-init reported it.</exception>
    private async Task RequireMemberAsync(ProbeTarget target, string condition, CancellationToken cancellationToken)
    {
        var group = _groups.Find(target.Group);
        if (group?.Members.Find(target.Vpid) is not null)
        {
            return;
        }
        var how = await ExitReports.HowAsync(group, target.Vpid, _time, cancellationToken).ConfigureAwait(false) ?? "exited";
        throw new NotReadyException($"{target.App} (pid {target.Vpid}) {how} before it was ready ({condition})", exited: true);
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? (a > TimeSpan.Zero ? a : TimeSpan.Zero) : (b > TimeSpan.Zero ? b : TimeSpan.Zero);
}
