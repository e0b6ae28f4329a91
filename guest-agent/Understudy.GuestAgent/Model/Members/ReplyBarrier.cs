using System.Threading.Channels;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>
/// Sends one command to a set of members and waits until each answered it: the barrier of every
/// checkpoint and restore phase. Fails as soon as one member dies, answers FAILED, or the
/// deadline passes.
/// </summary>
internal static class ReplyBarrier
{
    /// <param name="answered">reports how many members answered so far.</param>
    /// <param name="sent">called once the command went to every member (frozen time ends at RESUME sent).</param>
    public static async Task<IReadOnlyDictionary<Member, TReply>> RunAsync<TReply>(
        IReadOnlyList<Member> members,
        MemberCommand command,
        TimeSpan timeout,
        IProgress<int>? answered,
        Action? sent,
        CancellationToken cancellationToken)
        where TReply : MemberReply
    {
        var phase = command.Verb;
        foreach (var member in members)
        {
            if (member.Connection is not { } connection)
            {
                throw new MemberPhaseException(phase, PhaseFailure.Exited, [member]);
            }
            try
            {
                await connection.SendAsync(command, cancellationToken).ConfigureAwait(false);
            }
            catch (MemberDisconnectedException)
            {
                throw new MemberPhaseException(phase, PhaseFailure.Exited, [member]);
            }
        }
        sent?.Invoke();
        return await AwaitAllAsync<TReply>(members, phase, timeout, answered, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Waits for an answer that follows an earlier command (WRITTEN after CAPTURED and RESUME).</summary>
    public static async Task<IReadOnlyDictionary<Member, TReply>> AwaitAllAsync<TReply>(
        IReadOnlyList<Member> members,
        string phase,
        TimeSpan timeout,
        IProgress<int>? answered,
        CancellationToken cancellationToken)
        where TReply : MemberReply
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var waiting = members.ToDictionary(m => AwaitAnswerAsync<TReply>(m, phase, deadline.Token), m => m);
        var replies = new Dictionary<Member, TReply>();
        try
        {
            while (waiting.Count > 0)
            {
                var done = await Task.WhenAny(waiting.Keys).ConfigureAwait(false);
                waiting.Remove(done, out var member);
                if (done.IsCompletedSuccessfully)
                {
                    replies[member!] = done.Result;
                    answered?.Report(replies.Count);
                    continue;
                }
                if (done.Exception?.InnerException is MemberPhaseException failure)
                {
                    throw failure;
                }
                cancellationToken.ThrowIfCancellationRequested();
                // The deadline passed: name everyone who had not answered.
                throw new MemberPhaseException(phase, PhaseFailure.TimedOut, [member!, .. waiting.Values], timeout: timeout);
            }
            return replies;
        }
        finally
        {
            // Stop the other waits; an unread answer stays queued for the next round to discard.
            await deadline.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(waiting.Keys.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
        }
    }

    /// <summary>Drops answers left over from an earlier round that was aborted.</summary>
    public static void DiscardStaleReplies(IEnumerable<Member> members)
    {
        foreach (var member in members)
        {
            if (member.Connection is { } connection)
            {
                while (connection.Replies.TryRead(out _))
                {
                }
            }
        }
    }

    private static async Task<TReply> AwaitAnswerAsync<TReply>(Member member, string phase, CancellationToken cancellationToken)
        where TReply : MemberReply
    {
        var connection = member.Connection ?? throw new MemberPhaseException(phase, PhaseFailure.Exited, [member]);
        while (true)
        {
            MemberReply reply;
            try
            {
                reply = await connection.Replies.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                throw new MemberPhaseException(phase, PhaseFailure.Exited, [member]);
            }
            switch (reply)
            {
                case TReply answer:
                    return answer;
                case FailedReply failed:
                    throw new MemberPhaseException(phase, PhaseFailure.Failed, [member], failed.Reason);
                default:
                    // A late answer to an earlier, aborted round: not this phase's.
                    continue;
            }
        }
    }
}
