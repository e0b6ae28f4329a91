using Understudy.GuestAgent.Operations.Launch;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// Processes that exited while a group was coming up (started, restarted or restored). Such an
/// exit is no fault yet, but one of the group's main processes among them means the group is
/// not running after all, and any of them explains a failed start best. Exits of every us-init
/// are kept, since the one being replaced may still report; readers pick the one they mean.
/// </summary>
internal sealed class ComingUpExits
{
    private readonly object _sync = new();
    private readonly List<MemberExited> _exits = [];
    private TaskCompletionSource _seen = NewSignal();

    public void Clear()
    {
        lock (_sync)
        {
            _exits.Clear();
            _seen = NewSignal();
        }
    }

    public void Record(MemberExited exit)
    {
        lock (_sync)
        {
            _exits.Add(exit);
            _seen.TrySetResult();
        }
    }

    /// <summary>The exits reported by the us-init with <paramref name="initHostPid"/> (none for 0).</summary>
    public IReadOnlyList<MemberExited> Of(int initHostPid)
    {
        lock (_sync)
        {
            return initHostPid == 0 ? [] : _exits.Where(x => x.InitHostPid == initHostPid).ToList();
        }
    }

    /// <summary>
    /// Waits, at most <paramref name="patience"/>, for an exit to be reported: an application found
    /// gone has died, and us-init's report of how is on its way.
    /// </summary>
    public Task WaitForOneAsync(TimeSpan patience, TimeProvider time)
    {
        Task seen;
        lock (_sync)
        {
            seen = _seen.Task;
        }
        return Task.WhenAny(seen, Task.Delay(patience, time));
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
