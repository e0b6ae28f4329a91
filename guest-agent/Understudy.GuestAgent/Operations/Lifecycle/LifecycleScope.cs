using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Restore;

namespace Understudy.GuestAgent.Operations.Lifecycle;

/// <summary>
/// A group's operations while its lifecycle lock is held: handed to the work given to
/// <see cref="GroupLifecycle.RunExclusiveAsync{T}"/>, and usable only until that work ends. What is
/// done through it cannot be interleaved with any other operation on the group's processes.
/// </summary>
internal sealed class LifecycleScope
{
    private readonly GroupLifecycle _lifecycle;
    private volatile bool _ended;

    public LifecycleScope(GroupLifecycle lifecycle)
    {
        _lifecycle = lifecycle;
    }

    public string Group => _lifecycle.Name;

    /// <summary>Launches an application, starting the group's us-init if needed; returns once it registered.</summary>
    public Task<LaunchedMember> LaunchAsync(LaunchSpec spec, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        return _lifecycle.LaunchHeldAsync(spec, cancellationToken);
    }

    /// <summary>
    /// An operator's restore does not silently kill a running group: it is refused unless the
    /// operator said so (<paramref name="force"/>).
    /// </summary>
    /// <exception cref="AgentException">FailedPrecondition: the group runs.</exception>
    public void RequireStoppedUnless(bool force, string? checkpointId)
    {
        ThrowIfEnded();
        _lifecycle.RequireStoppedUnless(force, checkpointId);
    }

    /// <summary>Stops the group, if it runs; returns how many members it had.</summary>
    public Task<int> StopAsync()
    {
        ThrowIfEnded();
        return _lifecycle.StopHeldAsync();
    }

    /// <param name="checkpointId">null or empty: the newest</param>
    /// <param name="resume">how the restored processes are let run</param>
    public Task<RestoreOutcome> RestoreAsync(string? checkpointId, IResumeOrder resume, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        return _lifecycle.RestoreHeldAsync(checkpointId, resume, cancellationToken);
    }

    /// <summary>
    /// A checkpoint after which the group stays frozen, for a migration's last round
    /// (<see cref="GroupCheckpointer.RunAndHoldAsync"/>): the caller resumes it or stops it.
    /// </summary>
    public Task<FrozenGroup> CheckpointAndHoldAsync(IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        return _lifecycle.CheckpointAndHoldHeldAsync(progress, cancellationToken);
    }

    internal void End() => _ended = true;

    private void ThrowIfEnded()
    {
        if (_ended)
        {
            throw new InvalidOperationException($"group {Group}: a lifecycle scope was used after its exclusive work ended");
        }
    }
}
