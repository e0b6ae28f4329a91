using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>Where a supervised group stands (hactl status and group show call it its availability).</summary>
internal enum SupervisionState
{
    /// <summary>Not started, or stopped by the operator.</summary>
    Stopped,
    /// <summary>Launching its applications in order.</summary>
    Starting,
    /// <summary>Every application is ready; faults are watched for, checkpoints taken on schedule.</summary>
    Running,
    /// <summary>A fault was detected; the whole group is being restored or restarted.</summary>
    Recovering,
    Stopping,
    /// <summary>Stopped by the agent: it did not start, or it failed too often. The reason says why.</summary>
    Failed,
    /// <summary>A migration's last round: frozen while the target takes it over; exits are no faults.</summary>
    Migrating,
    /// <summary>
    /// The group moved to another node, which runs and supervises it: this node keeps its policy as
    /// the standby's copy (and receives its checkpoints), and starts nothing by it.
    /// </summary>
    Standby,
}

/// <summary>What a supervisor shows (hactl group show, status).</summary>
internal sealed record SupervisorSnapshot(
    SupervisionState State, string? Reason, DateTimeOffset Since, int RecentRecoveries, AppliedPolicy Applied,
    IReadOnlyDictionary<string, int> MainVpids, IReadOnlyList<HealthCheckStatus> Health, DateTimeOffset? NextCheckpointUtc,
    Fault? LastFault);
