using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Operations.Restore;

/// <summary>A restored process could not be resumed: it died, answered FAILED, or did not answer RESUME in time.</summary>
internal sealed class ResumeFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Lets restored processes of one group run: RESUME to each, then waits for every RESUMED. One
/// of us-init's children that crashes on the way (a signal that dumps core) is named with how it
/// ended, as us-init reported it. One that exits, or is killed, as soon as it runs is no failure:
/// it was restored about to end (a pipeline's command), and ran on to it.
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
        IReadOnlyDictionary<Member, ResumedReply> resumed;
        try
        {
            resumed = await ReplyBarrier.RunAsync<ResumedReply>(
                members, new ResumeCommand(), _timeout, answered: null, sent, cancellationToken, mayLeave: m => !ProcFs.IsRunning(m.HostPid))
                .ConfigureAwait(false);
        }
        catch (MemberPhaseException e)
        {
            throw new ResumeFailedException(e.Message, e);
        }
        // us-init reaps its own children and reports how they ended; a process whose parent is
        // another of the group's is that parent's to reap, and its end is left to it.
        var crashed = new List<string>();
        foreach (var member in members.Where(m => !resumed.ContainsKey(m) && m.Vppid == 1))
        {
            var report = await ExitReports.ReportAsync(_group, member.Vpid, _time, cancellationToken).ConfigureAwait(false);
            if (report is not { Crashed: false })
            {
                crashed.Add($"{member.App} (pid {member.Vpid}) {report?.How ?? "exited"}");
            }
        }
        if (crashed.Count > 0)
        {
            throw new ResumeFailedException($"{string.Join(", ", crashed)} while being resumed");
        }
    }
}
