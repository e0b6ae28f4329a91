using Understudy.GuestAgent.Operations.Restore;

namespace Understudy.GuestAgent.Operations.Lifecycle;

/// <summary>
/// A group's supervisor as its lifecycle sees it (the supervision layer implements it; see
/// <see cref="GroupLifecycle.Attach"/>). The operator's stop and restore of a supervised group are
/// the supervisor's to carry out, through the lifecycle's own operations: a stop is then no fault,
/// and a restored group comes up in launch order and is watched again. A migration of the group
/// tells the supervisor where it stands (<see cref="BeginMigrationAsync"/>).
/// </summary>
internal interface IGroupSupervision
{
    /// <returns>how many members the group had</returns>
    Task<int> StopAsync(string why, CancellationToken cancellationToken);

    /// <param name="checkpointId">null or empty: the newest</param>
    /// <param name="force">restore even though the group runs; otherwise that is refused</param>
    Task<RestoreOutcome> RestoreAsync(string? checkpointId, bool force, CancellationToken cancellationToken);

    /// <summary>A migration of the group to <paramref name="target"/> begins; one at a time.</summary>
    /// <exception cref="Foundation.Errors.AgentException">FailedPrecondition: the group is not running under supervision (starting, recovering, failed, ...).</exception>
    Task<ISupervisedMigration> BeginMigrationAsync(string target, CancellationToken cancellationToken);
}
