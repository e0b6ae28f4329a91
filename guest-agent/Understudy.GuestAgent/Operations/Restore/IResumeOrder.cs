using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Operations.Restore;

/// <summary>
/// How a restore lets its processes run once every one of them is back, registered and frozen:
/// all together (<see cref="ResumeTogether"/>), or application by application. The restore
/// holds the group meanwhile; whatever this throws fails the restore as it is (it says which
/// process and why), and the restore kills what it rebuilt.
/// </summary>
internal interface IResumeOrder
{
    /// <param name="members">every restored process, still frozen</param>
    /// <param name="resumer">lets some of them run</param>
    Task ResumeAsync(IReadOnlyList<Member> members, MemberResumer resumer, CancellationToken cancellationToken);
}

/// <summary>The whole group at once: the processes were frozen together, they run on together.</summary>
internal sealed class ResumeTogether : IResumeOrder
{
    public static readonly ResumeTogether Instance = new();

    private ResumeTogether()
    {
    }

    public Task ResumeAsync(IReadOnlyList<Member> members, MemberResumer resumer, CancellationToken cancellationToken) =>
        resumer.ResumeAsync(members, cancellationToken);
}
