using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// A group left frozen by a committed checkpoint (<see cref="CheckpointCoordinator.RunAndHoldAsync"/>):
/// its application threads stay stopped and its registration lock stays closed until
/// <see cref="ResumeAsync"/>, or until the group is stopped and this is disposed. Disposing it
/// without resuming leaves the processes frozen: only a stop or a restore ends them.
/// </summary>
internal sealed class FrozenGroup : IDisposable
{
    private readonly GateLease _lease;
    private readonly IReadOnlyList<Member> _members;
    private readonly FreezeMeter _freeze;
    private readonly CheckpointCoordinator _coordinator;

    internal FrozenGroup(CheckpointOutcome checkpoint, GateLease lease, IReadOnlyList<Member> members, FreezeMeter freeze, CheckpointCoordinator coordinator)
    {
        Checkpoint = checkpoint;
        _lease = lease;
        _members = members;
        _freeze = freeze;
        _coordinator = coordinator;
    }

    /// <summary>The checkpoint that holds the group's state as it is frozen.</summary>
    public CheckpointOutcome Checkpoint { get; }

    /// <summary>The processes held frozen.</summary>
    public IReadOnlyList<Member> Members => _members;

    /// <summary>Since PREPARE went out; it stops growing once the group resumes.</summary>
    public double FrozenMs => _freeze.FrozenMs;

    /// <summary>
    /// HOLD to every member: from now on a lost link (the agent restarting) leaves them frozen, until
    /// a coordinator sends RESUME. Sent once the group may run elsewhere: before a migration's takeover.
    /// </summary>
    public Task HoldAsync(CancellationToken cancellationToken) => _coordinator.HoldAsync(_members, cancellationToken);

    /// <summary>RESUME to every member: the group runs on; then the registration lock opens.</summary>
    public async Task ResumeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _coordinator.ResumeAsync(_members, _freeze, progress: null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lease.Dispose();
        }
    }

    public void Dispose() => _lease.Dispose();
}
