using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Scheduling;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// What watches a running group besides exit notification: its health checks and its
/// periodic checkpoints. Started when the group runs, stopped before every transition (a
/// recovery must not be checkpointed, nor probed).
/// </summary>
internal sealed class GroupMonitoring
{
    private readonly ProbeRunner _probes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CheckpointScheduler _scheduler;
    // Serializes starting, stopping and restarting the health checks and the schedule.
    private readonly SemaphoreSlim _serial = new(1, 1);
    private volatile HealthMonitor? _health;
    private Func<GroupPolicy> _policy = () => throw new InvalidOperationException("monitoring never started");
    private IReadOnlyDictionary<string, int> _vpids = new Dictionary<string, int>();
    private Action<HealthVerdict> _unhealthy = _ => { };

    public GroupMonitoring(ProbeRunner probes, GroupLifecycle lifecycle, TimeProvider time, ILogger logger)
    {
        _probes = probes;
        _time = time;
        _logger = logger;
        _scheduler = new CheckpointScheduler(lifecycle, time, logger);
    }

    /// <summary>Every health check passed its last run, or none ran yet.</summary>
    public bool AllPassing => _health?.AllPassing ?? true;

    public IReadOnlyList<HealthCheckStatus> Health => _health?.Snapshot() ?? [];

    public DateTimeOffset? NextCheckpointUtc => _scheduler.NextDueUtc;

    /// <param name="policy">read afresh each time: a policy applied meanwhile counts</param>
    /// <param name="vpids">each application's main process</param>
    /// <param name="unhealthy">told once when a check fails past its threshold</param>
    /// <param name="lastCheckpoint">when the group's last checkpoint was taken, for the schedule to go on from; null: it starts now</param>
    public async Task StartAsync(
        Func<GroupPolicy> policy, IReadOnlyDictionary<string, int> vpids, Action<HealthVerdict> unhealthy, DateTimeOffset? lastCheckpoint = null)
    {
        await _serial.WaitAsync().ConfigureAwait(false);
        try
        {
            (_policy, _vpids, _unhealthy) = (policy, vpids, unhealthy);
            StartHealth();
            _scheduler.Start(() => _policy().Checkpoints, () => AllPassing, lastCheckpoint);
        }
        finally
        {
            _serial.Release();
        }
    }

    public async Task StopAsync()
    {
        await _serial.WaitAsync().ConfigureAwait(false);
        try
        {
            await _scheduler.StopAsync().ConfigureAwait(false);
            await StopHealthAsync().ConfigureAwait(false);
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>Holds the scheduled checkpoints back until the lease is disposed (a migration's rounds); health checks go on.</summary>
    public Task<IDisposable> PauseCheckpointsAsync(CancellationToken cancellationToken) => _scheduler.PauseAsync(cancellationToken);

    /// <summary>The policy changed: the next checkpoint is due by the new schedule, and running health checks restart with the new list.</summary>
    public async Task ApplyAsync(bool healthChanged)
    {
        _scheduler.Reschedule();
        if (!healthChanged)
        {
            return;
        }
        await _serial.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_health is not null)
            {
                await StopHealthAsync().ConfigureAwait(false);
                StartHealth();
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    private void StartHealth()
    {
        var health = new HealthMonitor(_probes, _time, _logger, _unhealthy);
        health.Start(_policy(), _vpids);
        _health = health;
    }

    private async Task StopHealthAsync()
    {
        var health = _health;
        _health = null;
        if (health is not null)
        {
            await health.StopAsync().ConfigureAwait(false);
        }
    }
}
