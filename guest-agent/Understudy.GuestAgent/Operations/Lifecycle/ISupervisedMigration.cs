namespace Understudy.GuestAgent.Operations.Lifecycle;

/// <summary>
/// A supervised group's side of its migration to another node, as the migration sees it (the
/// supervision layer implements it; <see cref="IGroupSupervision.BeginMigrationAsync"/>). While the
/// copy-ahead rounds run, the supervisor watches the group as ever: a real fault stops the
/// migration (<see cref="Faulted"/>) and is recovered here. From <see cref="HoldAsync"/> on, the
/// freeze and the final kill are no fault: the group is either handed over or resumed here, and
/// supervision follows it. Disposing ends the migration's claim on the supervisor.
/// </summary>
internal interface ISupervisedMigration : IDisposable
{
    /// <summary>The group's policy as it was applied here: it goes with the group.</summary>
    string PolicyText { get; }

    /// <summary>Cancelled when the supervisor found a fault or hang of the group during the copy-ahead rounds.</summary>
    CancellationToken Faulted { get; }

    /// <summary>What the fault was, once <see cref="Faulted"/> is cancelled.</summary>
    string? FaultReason { get; }

    /// <summary>
    /// The last round begins, the group's lifecycle lock held: health checks and the checkpoint
    /// schedule stop, and exits are no faults until <see cref="ResumeAsync"/> or <see cref="HandedOver"/>.
    /// </summary>
    /// <exception cref="Foundation.Errors.AgentException">Aborted: a fault came first; the supervisor recovers the group.</exception>
    Task HoldAsync(LifecycleScope scope);

    /// <summary>The migration failed after <see cref="HoldAsync"/> and the group runs on here: supervision goes on.</summary>
    Task ResumeAsync();

    /// <summary>
    /// The group runs on <paramref name="target"/> now (called before its processes here are
    /// killed): this node keeps the policy as the standby's copy, and never starts the group again.
    /// </summary>
    void HandedOver(string target);

    /// <summary>
    /// Whether the group runs on the target is unknown, and it stays frozen here: the supervisor
    /// neither watches nor recovers it (that could make it run on both nodes) until the migration
    /// is settled (<paramref name="reason"/> says why it is not yet): <see cref="HandedOver"/> or
    /// <see cref="ResumeAsync"/> once the target answers, or <see cref="Release"/> if the operator
    /// settled the group first. Disposing no longer ends the migration's claim then.
    /// </summary>
    void Unresolved(string reason);

    /// <summary>An unresolved migration found the group stopped or restored by the operator meanwhile: the supervisor goes on as that left it.</summary>
    void Release();
}
