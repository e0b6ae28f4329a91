using Understudy.GuestAgent.Foundation.Events;

namespace Understudy.GuestAgent.Model.MemberSocket;

// A process registered with the group (docs/policy.md, "Events"). Types are "subject.what-happened".

internal sealed record MemberJoined(string Group, string App, int Vpid, int HostPid, string Origin, int ExecCount) : AgentEvent(Group)
{
    public override string Type => "member.joined";
    public override string Message => $"member {Vpid} ({App}) joined: origin {Origin}, exec count {ExecCount}, host pid {HostPid}";
    public override IEnumerable<(string, object?)> Fields() =>
        [("app", App), ("pid", Vpid), ("hostPid", HostPid), ("origin", Origin), ("execCount", ExecCount)];
}
