using Understudy.GuestAgent.Errors;
using Understudy.GuestAgent.Groups;
using Understudy.GuestAgent.Policies;

namespace Understudy.GuestAgent.Health;

/// <summary>An application did not become ready: the reason says which condition and what was seen last.</summary>
/// <param name="exited">it is gone, rather than still not ready</param>
internal sealed class NotReadyException(string message, bool exited = false) : Exception(message)
{
    public bool Exited { get; } = exited;
}

/// <summary>
/// Waits until an application meets its readiness condition (docs/policy.md, "ready"), polling
/// it, at most for its timeout. The application must stay a member meanwhile.
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

    /// <param name="restored">the application was restored, not launched: a delay has long passed.</param>
    /// <returns>what made it ready, for the event</returns>
    /// <exception cref="NotReadyException">the condition did not hold in time, or the application left.</exception>
    public async Task<string> WaitAsync(ProbeTarget target, ReadinessCheck? ready, bool restored, CancellationToken cancellationToken)
    {
        switch (ready)
        {
            case null:
                RequireMember(target, "registered");
                return "registered";
            case { Probe: DelayProbeSpec delay }:
                if (!restored)
                {
                    await Task.Delay(delay.Delay, _time, cancellationToken).ConfigureAwait(false);
                }
                RequireMember(target, delay.Describe());
                return delay.Describe();
        }

        var deadline = _time.GetUtcNow() + ready.Timeout;
        var last = ProbeResult.Fail("not checked yet");
        while (true)
        {
            RequireMember(target, $"{ready.Probe.Describe()}, last: {last.Detail}");
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

    private void RequireMember(ProbeTarget target, string condition)
    {
        if (_groups.Find(target.Group)?.Members.Find(target.Vpid) is null)
        {
            throw new NotReadyException($"{target.App} (pid {target.Vpid}) exited before it was ready ({condition})", exited: true);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? (a > TimeSpan.Zero ? a : TimeSpan.Zero) : (b > TimeSpan.Zero ? b : TimeSpan.Zero);
}
