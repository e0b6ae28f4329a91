using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>Whether a member's process can take part in a checkpoint, as the kernel shows it.</summary>
internal enum MemberCondition
{
    /// <summary>Running or sleeping: it can answer.</summary>
    Able,
    /// <summary>Stopped (SIGSTOP, SIGTSTP: state T) or stopped by a tracer (t): nothing of it runs until SIGCONT.</summary>
    Stopped,
    /// <summary>A thread has been in one uninterruptible sleep (D) for longer than <see cref="MemberLiveness.UninterruptibleGrace"/>.</summary>
    Uninterruptible,
}

/// <summary>
/// Looks at a member's threads in /proc to tell whether it can answer the coordinator at all: a
/// stopped process cannot, and neither can one stuck in the kernel. A thread briefly in D (a
/// disk read) is normal, so D counts only once one wait lasted <see cref="UninterruptibleGrace"/>
/// (<see cref="UninterruptibleWaits"/>): a busy disk puts threads in D again and again, never for long.
/// </summary>
internal static class MemberLiveness
{
    public static readonly TimeSpan UninterruptibleGrace = TimeSpan.FromSeconds(1);

    /// <summary>How often a waiting round looks at the members that have not answered.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    public static MemberCondition Check(Member member, TimeProvider time)
    {
        var threads = ProcFs.ThreadStates(member.HostPid);
        if (threads.Any(t => t.State is 'T' or 't'))
        {
            member.Waits.Clear();
            return MemberCondition.Stopped;
        }
        var waiting = new List<(int, long)>();
        foreach (var thread in threads.Where(t => t.State == 'D'))
        {
            if (ProcFs.ContextSwitches(member.HostPid, thread.Tid) is { } switches)
            {
                waiting.Add((thread.Tid, switches));
            }
        }
        var now = time.GetUtcNow();
        return member.Waits.Observe(waiting, now) is { } since && now - since >= UninterruptibleGrace
            ? MemberCondition.Uninterruptible
            : MemberCondition.Able;
    }

    /// <summary>
    /// The first of <paramref name="members"/> that cannot take part, or null. A member seen in D
    /// is looked at again; it is watched up to the grace only while the same wait lasts, so that
    /// neither a brief disk wait nor a busy disk (short waits one after another) is a refusal.
    /// </summary>
    public static async Task<(Member Member, MemberCondition Condition)?> FindStuckAsync(
        IReadOnlyList<Member> members, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + UninterruptibleGrace + PollInterval;
        for (var look = 0; ; look++)
        {
            var undecided = false;
            foreach (var member in members)
            {
                var condition = Check(member, time);
                if (condition != MemberCondition.Able)
                {
                    return (member, condition);
                }
                undecided |= look == 0 ? member.Waits.Any : member.Waits.Lasting;
            }
            if (!undecided || time.GetUtcNow() > deadline)
            {
                return null;
            }
            await Task.Delay(PollInterval, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How errors and status name the condition, with what to do about it.</summary>
    /// <param name="phase">the command it cannot answer, if any</param>
    public static string Describe(Member member, MemberCondition condition, string? phase = null)
    {
        var answer = phase is null ? "cannot answer" : $"cannot answer {phase}";
        return condition switch
        {
            MemberCondition.Stopped =>
                $"{member.Describe()} is stopped (host pid {member.HostPid}, state T: SIGSTOP or a debugger) and {answer}; " +
                $"let it run again with kill -CONT {member.HostPid}, or stop the group",
            MemberCondition.Uninterruptible =>
                $"{member.Describe()} is stuck in an uninterruptible wait in the kernel (host pid {member.HostPid}, state D) and {answer}; " +
                $"see /proc/{member.HostPid}/task/*/stack, or stop the group",
            _ => $"{member.Describe()} can take part",
        };
    }

    /// <summary>The word status shows: stopped, uninterruptible, or null when it can take part.</summary>
    public static string? StatusWord(MemberCondition condition) => condition switch
    {
        MemberCondition.Stopped => "stopped",
        MemberCondition.Uninterruptible => "uninterruptible",
        _ => null,
    };
}
