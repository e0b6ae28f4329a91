using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Operations.Restore;

/// <summary>A restored process could not be resumed: it died, answered FAILED, or did not answer RESUME in time.</summary>
internal sealed class ResumeFailedException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// Lets restored processes of one group run: RESUME to each, then waits for every RESUMED. One
/// that dies on the way is named with how it ended, as us-init reported it.
/// </summary>
internal sealed class MemberResumer
{
    private readonly Group _group;
    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;

    /// <param name="timeout">how long each round waits for the RESUMED answers</param>
    public MemberResumer(Group group, TimeSpan timeout, TimeProvider time)
    {
        _group = group;
        _timeout = timeout;
        _time = time;
    }

    /// <exception cref="ResumeFailedException">one of them did not resume.</exception>
    /// <param name="sent">called once RESUME went to every one of them: they were let run, whatever follows</param>
    public async Task ResumeAsync(IReadOnlyList<Member> members, CancellationToken cancellationToken, Action? sent = null)
    {
        if (members.Count == 0)
        {
            return;
        }
        try
        {
            await ReplyBarrier.RunAsync<ResumedReply>(
                members, new ResumeCommand(), _timeout, answered: null, sent, cancellationToken).ConfigureAwait(false);
        }
        catch (MemberPhaseException e) when (e.Failure == PhaseFailure.Exited)
        {
            var gone = new List<string>();
            foreach (var member in e.Members)
            {
                var how = await ExitReports.HowAsync(_group, member.Vpid, _time, cancellationToken).ConfigureAwait(false) ?? "exited";
                gone.Add($"{member.App} (pid {member.Vpid}) {how}");
            }
            throw new ResumeFailedException($"{string.Join(", ", gone)} while being resumed", e);
        }
        catch (MemberPhaseException e)
        {
            throw new ResumeFailedException(e.Message, e);
        }
    }
}
