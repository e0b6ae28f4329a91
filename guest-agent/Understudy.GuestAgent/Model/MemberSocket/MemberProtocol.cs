using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.MemberSocket;

/// <summary>
/// The coordinator's side of the member protocol: registration (HELLO), the fork/exec/spawn
/// handshakes and the end of a connection. Answers to checkpoint commands are queued by the
/// connection itself; here they only update the member's state.
/// </summary>
internal sealed class MemberProtocol : IMemberMessageHandler
{
    private const int ProtocolVersion = 1;

    /// <summary>How often WAIT tells a process whose HELLO or *_BEGIN waits that the coordinator is there.</summary>
    private static readonly TimeSpan WaitInterval = TimeSpan.FromSeconds(1);

    private readonly GroupRegistry _groups;
    private readonly ILogger<MemberProtocol> _logger;
    private readonly IEventPublisher _events;
    private long _lastMemberId;

    public MemberProtocol(GroupRegistry groups, ILogger<MemberProtocol> logger, IEventPublisher events)
    {
        _groups = groups;
        _logger = logger;
        _events = events;
    }

    public void OnMessage(MemberConnection connection, MemberMessage message)
    {
        switch (message)
        {
            case HelloMessage hello:
                connection.TrackRequest(() => HelloAsync(connection, hello));
                break;
            case ForkBeginMessage:
                Begin(connection, RegistrationKind.Fork);
                break;
            case ExecBeginMessage:
                Begin(connection, RegistrationKind.Exec);
                break;
            case SpawnBeginMessage:
                Begin(connection, RegistrationKind.Spawn);
                break;
            case ForkEndMessage end:
                End(connection, RegistrationKind.Fork, end.ChildVpid);
                break;
            case SpawnEndMessage end:
                End(connection, RegistrationKind.Spawn, end.ChildVpid);
                break;
            case ExecFailMessage:
                End(connection, RegistrationKind.Exec, childVpid: 0);
                break;
            case FrozenReply when connection.Member is { } member:
                member.State = MemberState.Frozen;
                break;
            case ResumedReply when connection.Member is { } member:
                member.State = MemberState.Running;
                break;
        }
    }

    public Task OnDisconnectedAsync(MemberConnection connection)
    {
        if (connection.Member is not { } member || _groups.Find(member.Group) is not { } group)
        {
            return Task.CompletedTask;
        }
        if (!ReferenceEquals(group.Members.Find(member.Vpid), member))
        {
            // Already replaced by the program it exec'd, or removed when us-init reported the exit.
            return Task.CompletedTask;
        }
        if (group.Gate.HasPendingExec(member.Vpid))
        {
            // execve closed the old program's socket; the new program says HELLO with the same vpid.
            member.DetachForExec();
            _logger.LogDebug("Member {Vpid} ({App}) of group {Group} is exec'ing", member.Vpid, member.App, group.Name);
            return Task.CompletedTask;
        }
        if (group.Members.Remove(member))
        {
            _logger.LogInformation(
                "Member {Vpid} ({App}) left group {Group}: its connection closed (host pid {HostPid})",
                member.Vpid, member.App, group.Name, member.HostPid);
            // A process that exits has ended its run before its connection closes; one that
            // still runs lost its link (it closed the descriptor, or the link was cut), unless
            // the agent closed it (it shuts down, and the process registers with the next one).
            if (!connection.ClosedByAgent && ProcFs.IsRunning(member.HostPid))
            {
                _events.Publish(new MemberUnprotected(group.Name, member.App, member.Vpid, member.HostPid));
            }
        }
        return Task.CompletedTask;
    }

    private async Task HelloAsync(MemberConnection connection, HelloMessage hello)
    {
        if (Refusal(connection, hello) is { } reason)
        {
            _logger.LogWarning(
                "Refused HELLO from host pid {HostPid} (group {Group}, vpid {Vpid}): {Reason}",
                connection.HostPid, hello.Group, hello.Vpid, reason);
            await connection.SendAsync(new RefusedCommand(reason), connection.Closed).ConfigureAwait(false);
            return;
        }

        var group = _groups.GetOrCreate(hello.Group);
        // Waits while a checkpoint holds the registration lock (reply later).
        var admitting = group.Gate.AdmitHelloAsync(hello, connection.Closed);
        await KeepAliveAsync(connection, admitting).ConfigureAwait(false);
        var admission = await admitting.ConfigureAwait(false);
        try
        {
            if (group.Members.Find(hello.Vpid) is { } newer && newer.ExecCount > hello.ExecCount
                && newer.Connection is { IsClosed: false })
            {
                // A HELLO that waited while the program it exec'd already registered: that one is the process now.
                await connection.SendAsync(new RefusedCommand($"vpid {hello.Vpid} already registered with exec count {newer.ExecCount}"), connection.Closed).ConfigureAwait(false);
                return;
            }
            var member = new Member(Interlocked.Increment(ref _lastMemberId), hello, connection);
            // WELCOME goes out before anything else reaches the member: a restore sends RESUME as
            // soon as the member is in the table, and a checkpoint waits for the registration to
            // finish (below) before it sends PREPARE.
            await connection.RegisterAndWelcomeAsync(
                () =>
                {
                    group.Members.Register(member);
                    connection.Member = member;
                },
                new WelcomeCommand(member.Id), connection.Closed).ConfigureAwait(false);
            _events.Publish(new MemberJoined(group.Name, member.App, member.Vpid, member.HostPid, hello.Origin.ToToken(), member.ExecCount));
        }
        finally
        {
            group.Gate.Finish(admission.Claimed);
            group.Gate.Finish(admission.Registration);
        }
    }

    private static string? Refusal(MemberConnection connection, HelloMessage hello)
    {
        if (connection.Member is not null)
        {
            return "this connection is already registered";
        }
        if (hello.Version != ProtocolVersion)
        {
            return $"protocol version {hello.Version} is not supported; this agent speaks version {ProtocolVersion}";
        }
        if (!GroupNames.IsValid(hello.Group))
        {
            return $"invalid group name '{hello.Group}'";
        }
        if (hello.Vpid <= 0 || hello.ExecCount < 0)
        {
            return "invalid vpid or exec count";
        }
        if (connection.Confinement is { } only && (only.Group != hello.Group || only.Vpid != hello.Vpid))
        {
            return $"a process that is neither root nor the agent's user registers only as itself: pid {only.Vpid} of group {only.Group}";
        }
        return null;
    }

    private void Begin(MemberConnection connection, RegistrationKind kind)
    {
        if (connection.Member is not { } member || _groups.Find(member.Group) is not { } group)
        {
            // Not a member, so nothing of it is ever checkpointed: do not keep it waiting.
            _logger.LogWarning("Host pid {HostPid} asked to {Kind} before it registered", connection.HostPid, kind);
            connection.TrackRequest(() => connection.SendAsync(new GrantCommand(), connection.Closed));
            return;
        }

        connection.TrackRequest(async () =>
        {
            var beginning = group.Gate.BeginAsync(kind, member.Vpid, connection.Closed);
            await KeepAliveAsync(connection, beginning).ConfigureAwait(false);
            var registration = await beginning.ConfigureAwait(false);
            try
            {
                await connection.SendAsync(new GrantCommand(), connection.Closed).ConfigureAwait(false);
            }
            catch
            {
                group.Gate.Finish(registration);
                throw;
            }
        });
    }

    /// <summary>WAIT every second until <paramref name="reply"/> is decided (docs/protocol.md): the process waits through silence only so long.</summary>
    private static async Task KeepAliveAsync(MemberConnection connection, Task reply)
    {
        try
        {
            while (!reply.IsCompleted)
            {
                var first = await Task.WhenAny(reply, Task.Delay(WaitInterval, connection.Closed)).ConfigureAwait(false);
                if (first != reply && !reply.IsCompleted)
                {
                    await connection.SendAsync(new WaitCommand(), connection.Closed).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or MemberDisconnectedException)
        {
            // The connection closed: the reply fails with it.
        }
    }

    /// <param name="childVpid">FORK_END/SPAWN_END's child, or -1/0 (and 0 for EXEC_FAIL) when it failed.</param>
    private void End(MemberConnection connection, RegistrationKind kind, int childVpid)
    {
        if (connection.Member is not { } member || _groups.Find(member.Group) is not { } group)
        {
            return;
        }
        if (childVpid > 0)
        {
            group.Gate.ReportChild(kind, member.Vpid, childVpid);
        }
        else
        {
            group.Gate.ReportFailed(kind, member.Vpid);
        }
    }
}
