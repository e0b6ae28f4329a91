using Understudy.GuestAgent.Groups;

namespace Understudy.GuestAgent.Members;

/// <summary>A line a process sends to the coordinator (docs/protocol.md, "Member protocol").</summary>
internal abstract record MemberMessage;

internal sealed record HelloMessage(
    int Version, string Group, string App, int Vpid, int Vppid, int ExecCount, RegistrationOrigin Origin) : MemberMessage;

internal sealed record ForkBeginMessage : MemberMessage;

/// <param name="ChildVpid">the child's vpid, or -1 when fork failed.</param>
internal sealed record ForkEndMessage(int ChildVpid) : MemberMessage;

internal sealed record ExecBeginMessage : MemberMessage;

internal sealed record ExecFailMessage : MemberMessage;

internal sealed record SpawnBeginMessage : MemberMessage;

/// <param name="ChildVpid">the child's vpid, or 0 when the spawn failed.</param>
internal sealed record SpawnEndMessage(int ChildVpid) : MemberMessage;

/// <summary>An answer to a coordinator command; these complete the coordinator's barriers.</summary>
internal abstract record MemberReply : MemberMessage;

internal sealed record FrozenReply(int Threads) : MemberReply;

internal sealed record WrittenReply(long MetaBytes, long PagesBytes) : MemberReply;

internal sealed record FailedReply(string Reason) : MemberReply;

internal sealed record ResumedReply : MemberReply;
