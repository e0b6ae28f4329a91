using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Model.MemberSocket;

// A process registered with the group (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record MemberJoined(string Group, string App, int Vpid, int HostPid, string Origin, int ExecCount) : AgentEvent(Group)
{
    public override string Type => "member.joined";
    public override string Message => Origin == "reattach"
        ? $"member {Vpid} ({App}) registered again on a new link: exec count {ExecCount}, host pid {HostPid}"
        : $"member {Vpid} ({App}) joined: origin {Origin}, exec count {ExecCount}, host pid {HostPid}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("app", App), ("pid", Vpid), ("hostPid", HostPid), ("origin", Origin), ("execCount", ExecCount)];
}

/// <summary>
/// A member's link ended while its process runs on (it closed the link's descriptor, or it
/// was cut): the process is not protected until it registers again (member.joined, origin
/// reattach), which it tries by itself.
/// </summary>
internal sealed record MemberUnprotected(string Group, string App, int Vpid, int HostPid) : AgentEvent(Group)
{
    public override string Type => "member.unprotected";
    public override EventSeverity Severity => EventSeverity.Warning;
    public override string Message =>
        $"member {Vpid} ({App}) lost its link to the agent and runs unprotected until it registers again (host pid {HostPid})";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("hostPid", HostPid)];
}
