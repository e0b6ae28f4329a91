namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>A line a process sends to the coordinator (docs/protocol.md, "Member protocol").</summary>
internal abstract record MemberMessage;

/// <param name="Tracker">the process's dirty-page tracker: uffd-wp-async, mprotect or none.</param>
/// <param name="Held">a process told to HOLD (a migration's frozen copy) that relinks frozen, and stays so until RESUME.</param>
internal sealed record HelloMessage(
    int Version, string Group, string App, int Vpid, int Vppid, int ExecCount, RegistrationOrigin Origin,
    string Tracker = "unknown", bool Held = false) : MemberMessage;

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

/// <param name="SurveyMicros">how long the process looked at its memory map before it froze (0 from an older interceptor)</param>
internal sealed record FrozenReply(int Threads, long SurveyMicros) : MemberReply;

/// <summary>WRITE with copy-on-write: a forked writer holds the snapshot, the group may resume.</summary>
internal sealed record CapturedReply : MemberReply;

/// <param name="Kind">"full" or "incremental", the kind the process wrote; null from a process that does not say (it wrote full).</param>
/// <param name="BaseVpid">Incremental: the process whose image in the base checkpoint it applies to, when not its own (it forked since).</param>
internal sealed record WrittenReply(long MetaBytes, long PagesBytes, string? Kind = null, int? BaseVpid = null) : MemberReply;

internal sealed record FailedReply(string Reason) : MemberReply;

internal sealed record ResumedReply : MemberReply;

/// <summary>Answer to HOLD: a lost link no longer thaws the process.</summary>
internal sealed record HeldReply : MemberReply;
