using System.Collections.Concurrent;
using System.Threading.Channels;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Members;

/// <summary>
/// Sends one command to a set of members and waits until each answered it: the barrier of every
/// checkpoint and restore phase. Fails as soon as one member dies, answers FAILED, is found
/// unable to answer (stopped, or stuck in the kernel: <see cref="MemberLiveness"/>), or the
/// deadline passes. A phase may let members leave instead (<c>mayLeave</c>): one that exits is
/// then left out of the answers, and the others are waited for.
/// </summary>
internal static class ReplyBarrier
{
    /// <param name="answered">reports how many members answered so far.</param>
    /// <param name="sent">called once the command went to every member (frozen time ends at RESUME sent).</param>
    /// <param name="mayLeave">whether a member that exited during the phase may be left out of it (the answers then lack it).</param>
    public static Task<IReadOnlyDictionary<Member, TReply>> RunAsync<TReply>(
        IReadOnlyList<Member> members,
        MemberCommand command,
        TimeSpan timeout,
        IProgress<int>? answered,
        Action? sent,
        CancellationToken cancellationToken,
        Func<Member, bool>? mayLeave = null)
        where TReply : MemberReply =>
        RunAsync<TReply>(members, _ => command, timeout, answered, sent, cancellationToken, mayLeave);

    /// <summary>The same, with a command of one verb that may differ from member to member.</summary>
    public static async Task<IReadOnlyDictionary<Member, TReply>> RunAsync<TReply>(
        IReadOnlyList<Member> members,
        Func<Member, MemberCommand> commandFor,
        TimeSpan timeout,
        IProgress<int>? answered,
        Action? sent,
        CancellationToken cancellationToken,
        Func<Member, bool>? mayLeave = null)
        where TReply : MemberReply
    {
        var phase = members.Count > 0 ? commandFor(members[0]).Verb : "";
        await SendAllAsync(members, commandFor, phase, mayLeave, cancellationToken).ConfigureAwait(false);
        sent?.Invoke();
        return await AwaitAllAsync<TReply>(members, phase, timeout, answered, cancellationToken, mayLeave).ConfigureAwait(false);
    }

    /// <summary>Sends <paramref name="command"/> to each member; fails, naming it, at the first that is gone.</summary>
    public static Task SendAllAsync(IReadOnlyList<Member> members, MemberCommand command, CancellationToken cancellationToken) =>
        SendAllAsync(members, _ => command, command.Verb, mayLeave: null, cancellationToken);

    private static async Task SendAllAsync(
        IReadOnlyList<Member> members, Func<Member, MemberCommand> commandFor, string phase, Func<Member, bool>? mayLeave,
        CancellationToken cancellationToken)
    {
        foreach (var member in members)
        {
            // One that may leave is left to its wait, which finds it gone too.
            if (!await TrySendAsync(member, commandFor(member), cancellationToken).ConfigureAwait(false) && mayLeave?.Invoke(member) != true)
            {
                throw new MemberPhaseException(phase, PhaseFailure.Exited, [member]);
            }
        }
    }

    /// <summary>False when the member's connection is gone.</summary>
    private static async Task<bool> TrySendAsync(Member member, MemberCommand command, CancellationToken cancellationToken)
    {
        if (member.Connection is not { } connection)
        {
            return false;
        }
        try
        {
            await connection.SendAsync(command, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (MemberDisconnectedException)
        {
            return false;
        }
    }

    /// <summary>Waits for an answer that follows an earlier command (WRITTEN after CAPTURED and RESUME).</summary>
    public static async Task<IReadOnlyDictionary<Member, TReply>> AwaitAllAsync<TReply>(
        IReadOnlyList<Member> members,
        string phase,
        TimeSpan timeout,
        IProgress<int>? answered,
        CancellationToken cancellationToken,
        Func<Member, bool>? mayLeave = null)
        where TReply : MemberReply
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var waiting = members.ToDictionary(m => AwaitAnswerAsync<TReply>(m, phase, deadline.Token), m => m);
        var unanswered = new ConcurrentDictionary<Member, bool>(members.Select(m => KeyValuePair.Create(m, true)));
        // A member that is stopped or stuck in the kernel cannot answer: the round fails at once,
        // naming it, rather than when the deadline passes.
        var watch = WatchAsync(unanswered, phase, deadline.Token);
        var replies = new Dictionary<Member, TReply>();
        try
        {
            while (waiting.Count > 0)
            {
                var next = await Task.WhenAny(waiting.Keys.Append<Task>(watch)).ConfigureAwait(false);
                if (next == watch)
                {
                    if (watch.Exception?.InnerException is MemberPhaseException stuck)
                    {
                        throw stuck;
                    }
                    cancellationToken.ThrowIfCancellationRequested();
                    throw new MemberPhaseException(phase, PhaseFailure.TimedOut, [.. waiting.Values], timeout: timeout);
                }
                var done = (Task<TReply>)next;
                waiting.Remove(done, out var member);
                if (done.IsCompletedSuccessfully)
                {
                    unanswered.TryRemove(member!, out _);
                    replies[member!] = done.Result;
                    answered?.Report(replies.Count);
                    continue;
                }
                if (done.Exception?.InnerException is MemberPhaseException failure)
                {
                    if (failure.Failure == PhaseFailure.Exited && mayLeave?.Invoke(member!) == true)
                    {
                        unanswered.TryRemove(member!, out _);
                        continue;
                    }
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
            await Task.WhenAll(waiting.Keys.Append<Task>(watch).Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
        }
    }

    /// <summary>Fails with <see cref="PhaseFailure.Stuck"/> once a member that has not answered cannot answer; ends when cancelled.</summary>
    private static async Task WatchAsync(ConcurrentDictionary<Member, bool> unanswered, string phase, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(MemberLiveness.PollInterval, cancellationToken).ConfigureAwait(false);
            foreach (var member in unanswered.Keys)
            {
                if (MemberLiveness.Check(member, TimeProvider.System) is not MemberCondition.Able and var condition)
                {
                    throw MemberPhaseException.Stuck(phase, member, condition);
                }
            }
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
