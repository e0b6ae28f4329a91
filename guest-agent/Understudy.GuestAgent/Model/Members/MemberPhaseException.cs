using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Model.Members;

internal enum PhaseFailure
{
    /// <summary>The member's connection ended: it died (or was killed) during the phase.</summary>
    Exited,
    /// <summary>The member answered FAILED.</summary>
    Failed,
    /// <summary>The member did not answer in time.</summary>
    TimedOut,
    /// <summary>The member cannot answer at all: it is stopped, or stuck in the kernel (<see cref="MemberLiveness"/>).</summary>
    Stuck,
}

/// <summary>Why a round of commands to a group's members did not complete.</summary>
internal sealed class MemberPhaseException : Exception
{
    public MemberPhaseException(string phase, PhaseFailure failure, IReadOnlyList<Member> members, string? reason = null, TimeSpan timeout = default)
        : base(Describe(phase, failure, members, reason, timeout))
    {
        Phase = phase;
        Failure = failure;
        Members = members;
    }

    public string Phase { get; }
    public PhaseFailure Failure { get; }
    public IReadOnlyList<Member> Members { get; }

    /// <summary>A member that cannot answer <paramref name="phase"/>: stopped, or stuck in the kernel.</summary>
    public static MemberPhaseException Stuck(string phase, Member member, MemberCondition condition) =>
        new(phase, PhaseFailure.Stuck, [member], MemberLiveness.Describe(member, condition, phase));

    private static string Describe(string phase, PhaseFailure failure, IReadOnlyList<Member> members, string? reason, TimeSpan timeout)
    {
        var who = members.Count == 1
            ? members[0].Describe()
            : "members " + string.Join(", ", members.OrderBy(m => m.Vpid).Select(m => $"{m.Vpid} ({m.App})"));
        return failure switch
        {
            PhaseFailure.Exited => $"{who} exited during {phase}",
            PhaseFailure.Failed => $"{who} failed {phase}: {reason}",
            PhaseFailure.Stuck => reason!,
            _ => $"{who} did not answer {phase} within {Durations.Describe(timeout)}",
        };
    }
}
