using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>Whether a member's process can take part in a checkpoint, as the kernel shows it.</summary>
internal enum MemberCondition
{
    /// <summary>Running or sleeping: it can answer.</summary>
    Able,
    /// <summary>Stopped (SIGSTOP, SIGTSTP: state T) or stopped by a tracer (t): nothing of it runs until SIGCONT.</summary>
    Stopped,
    /// <summary>A thread has been in uninterruptible sleep (D) for longer than <see cref="MemberLiveness.UninterruptibleGrace"/>.</summary>
    Uninterruptible,
}

/// <summary>
/// Looks at a member's threads in /proc to tell whether it can answer the coordinator at all: a
/// stopped process cannot, and neither can one stuck in the kernel. A thread briefly in D (a
/// disk read) is normal, so D counts only once it lasted <see cref="UninterruptibleGrace"/>.
/// </summary>
internal static class MemberLiveness
{
    public static readonly TimeSpan UninterruptibleGrace = TimeSpan.FromSeconds(1);

    /// <summary>How often a waiting round looks at the members that have not answered.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    public static MemberCondition Check(Member member, TimeProvider time)
    {
        var states = ProcFs.ThreadStates(member.HostPid);
        if (states.Any(s => s is 'T' or 't'))
        {
            member.UninterruptibleSince = null;
            return MemberCondition.Stopped;
        }
        if (!states.Contains('D'))
        {
            member.UninterruptibleSince = null;
            return MemberCondition.Able;
        }
        var now = time.GetUtcNow();
        var since = member.UninterruptibleSince ??= now;
        return now - since >= UninterruptibleGrace ? MemberCondition.Uninterruptible : MemberCondition.Able;
    }

    /// <summary>
    /// The first of <paramref name="members"/> that cannot take part, or null. A member in D is
    /// watched for up to the grace before it is judged, so that a brief disk wait is no refusal.
    /// </summary>
    public static async Task<(Member Member, MemberCondition Condition)?> FindStuckAsync(
        IReadOnlyList<Member> members, TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + UninterruptibleGrace + PollInterval;
        while (true)
        {
            var undecided = false;
            foreach (var member in members)
            {
                var condition = Check(member, time);
                if (condition != MemberCondition.Able)
                {
                    return (member, condition);
                }
                undecided |= member.UninterruptibleSince is not null;
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
