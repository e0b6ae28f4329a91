using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Health;

/// <summary>Where one health check stands.</summary>
internal sealed record HealthCheckStatus(
    string App, string Check, string State, int ConsecutiveFailures, string LastDetail,
    DateTimeOffset? LastRunUtc, DateTimeOffset? LastPassedUtc);

/// <summary>A health check failed <see cref="HealthCheck.FailureThreshold"/> times in a row.</summary>
/// <param name="AnsweredUtc">when it last passed (or, if never, when monitoring began after the group was ready): the application still answered then</param>
internal sealed record HealthVerdict(ProbeTarget Target, HealthCheck Check, string LastDetail, DateTimeOffset AnsweredUtc);

/// <summary>
/// Runs the health checks of one group's applications, each on its own interval, and reports
/// the first check that fails past its threshold (hang detection): the process may be alive,
/// but it no longer answers. Stopped while the group is not running.
/// </summary>
internal sealed class HealthMonitor
{
    private readonly ProbeRunner _probes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<HealthVerdict> _unhealthy;
    private readonly object _sync = new();
    private List<CheckRun> _runs = [];
    private CancellationTokenSource? _stop;
    private Task _loops = Task.CompletedTask;

    public HealthMonitor(ProbeRunner probes, TimeProvider time, ILogger logger, Action<HealthVerdict> unhealthy)
    {
        _probes = probes;
        _time = time;
        _logger = logger;
        _unhealthy = unhealthy;
    }

    /// <summary>Starts a loop per health check of each application that has a main process.</summary>
    public void Start(GroupPolicy policy, IReadOnlyDictionary<string, int> mainVpids)
    {
        lock (_sync)
        {
            _stop = new CancellationTokenSource();
            _runs = policy.Apps
                .Where(app => mainVpids.ContainsKey(app.Name))
                .SelectMany(app => app.Health.Select(check =>
                    new CheckRun(new ProbeTarget(policy.Group, app.Name, mainVpids[app.Name]), check, _time.GetUtcNow())))
                .ToList();
            var stop = _stop.Token;
            _loops = Task.WhenAll(_runs.Select(run => Task.Run(() => RunAsync(run, stop), CancellationToken.None)));
        }
    }

    public async Task StopAsync()
    {
        Task loops;
        lock (_sync)
        {
            _stop?.Cancel();
            _stop = null;
            loops = _loops;
        }
        await loops.ConfigureAwait(false);
    }

    /// <summary>Every check has passed its last run (or not run yet): the group looks healthy.</summary>
    public bool AllPassing
    {
        get { lock (_sync) { return _runs.All(r => r.ConsecutiveFailures == 0); } }
    }

    public IReadOnlyList<HealthCheckStatus> Snapshot()
    {
        lock (_sync)
        {
            return _runs.Select(r => r.Status()).ToList();
        }
    }

    private async Task RunAsync(CheckRun run, CancellationToken stop)
    {
        try
        {
            // The first run waits one interval: the application just became ready.
            await Task.Delay(run.Check.Interval, _time, stop).ConfigureAwait(false);
            while (true)
            {
                var result = await _probes.RunAsync(run.Check.Probe, run.Target, run.Check.Timeout, stop).ConfigureAwait(false);
                int failures;
                lock (_sync)
                {
                    failures = run.Record(result, _time.GetUtcNow());
                }
                if (!result.Passed)
                {
                    _logger.LogInformation(
                        "Health check {Check} of {App} in group {Group} failed ({Failures} of {Threshold}): {Detail}",
                        run.Check.Probe.Describe(), run.Target.App, run.Target.Group, failures, run.Check.FailureThreshold, result.Detail);
                    if (failures >= run.Check.FailureThreshold)
                    {
                        _unhealthy(new HealthVerdict(run.Target, run.Check, result.Detail, run.LastPassedUtc ?? run.StartedUtc));
                        return;
                    }
                }
                await Task.Delay(run.Check.Interval, _time, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>One check's loop state; guarded by the monitor's lock.</summary>
    private sealed class CheckRun(ProbeTarget target, HealthCheck check, DateTimeOffset startedUtc)
    {
        public ProbeTarget Target { get; } = target;
        public HealthCheck Check { get; } = check;
        public DateTimeOffset StartedUtc { get; } = startedUtc;
        public int ConsecutiveFailures { get; private set; }
        public DateTimeOffset? LastPassedUtc { get; private set; }
        private DateTimeOffset? _lastRunUtc;
        private ProbeResult? _last;

        public int Record(ProbeResult result, DateTimeOffset now)
        {
            _last = result;
            _lastRunUtc = now;
            if (result.Passed)
            {
                ConsecutiveFailures = 0;
                LastPassedUtc = now;
            }
            else
            {
                ConsecutiveFailures++;
            }
            return ConsecutiveFailures;
        }

        public HealthCheckStatus Status() => new(
            Target.App,
            PolicyText.Describe(Check),
            _last is null ? "unknown" : ConsecutiveFailures == 0 ? "passing" : "failing",
            ConsecutiveFailures,
            _last?.Detail ?? "",
            _lastRunUtc,
            LastPassedUtc);
    }
}
