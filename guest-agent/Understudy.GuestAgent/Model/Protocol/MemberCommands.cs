using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>A line the coordinator sends to a process.</summary>
internal abstract record MemberCommand
{
    /// <summary>The line without its terminating '\n'.</summary>
    public abstract string ToLine();

    /// <summary>The verb, for logs and error messages ("PREPARE", "WRITE", ...).</summary>
    public string Verb => ToLine().Split(' ', 2)[0];

    /// <summary>Open descriptors sent with the line (SCM_RIGHTS); the sender keeps its own.</summary>
    public virtual IReadOnlyList<SafeHandle> Descriptors => [];
}

internal sealed record WelcomeCommand(long MemberId) : MemberCommand
{
    public override string ToLine() => $"WELCOME {MemberId}";
}

/// <summary>The reason is the rest of the line, like FAILED's; a newline in it is folded.</summary>
internal sealed record RefusedCommand(string Reason) : MemberCommand
{
    public override string ToLine() => $"REFUSED {Reason.ReplaceLineEndings(" ")}";
}

/// <summary>
/// The coordinator is there and answers a HELLO or a *_BEGIN later (a checkpoint holds the
/// registration lock): sent every second while it waits, so that the process can tell a busy
/// coordinator from a silent one.
/// </summary>
internal sealed record WaitCommand : MemberCommand
{
    public override string ToLine() => "WAIT";
}

internal sealed record GrantCommand : MemberCommand
{
    public override string ToLine() => "GRANT";
}

internal sealed record PrepareCommand(string CheckpointId) : MemberCommand
{
    public override string ToLine() => $"PREPARE {TokenCodec.Encode(CheckpointId)}";
}

/// <param name="Kind">"full" or "incremental": what is asked; a process may write full anyway.</param>
/// <param name="BaseSeq">With "incremental": the checkpoint the image is to apply to; 0 with "full".</param>
/// <param name="CopyOnWrite">the member answers CAPTURED once a forked writer holds its snapshot,
/// and WRITTEN after the RESUME that follows, when the image is complete.</param>
/// <param name="CapturesIpc">this member also captures the group's IPC namespace (SysV objects,
/// POSIX message queues) into its image: one member per checkpoint does.</param>
/// <param name="Images">the member's <c>.meta</c> and <c>.pages</c> files, created by the agent and
/// sent open with the line, which then says <c>files</c>: a process that dropped its privileges cannot
/// create them itself, and one whose descriptors did not arrive fails the WRITE.</param>
internal sealed record WriteCommand(string CheckpointId, string Directory, string Kind, long BaseSeq = 0, bool CopyOnWrite = false,
    bool CapturesIpc = false, IReadOnlyList<SafeHandle>? Images = null)
    : MemberCommand
{
    public override IReadOnlyList<SafeHandle> Descriptors => Images ?? [];

    public override string ToLine() =>
        $"WRITE {TokenCodec.Encode(CheckpointId)} {TokenCodec.Encode(Directory)} {Kind} {BaseSeq}" +
        (CopyOnWrite ? " cow" : "") + (CapturesIpc ? " ipc" : "") + (Images is { Count: > 0 } ? " files" : "");
}

internal sealed record ResumeCommand : MemberCommand
{
    public override string ToLine() => "RESUME";
}

/// <summary>
/// After the last round of a migration (the group frozen, its images written): the process stays
/// frozen even when its link is lost, until a coordinator sends RESUME; answered HELD.
/// </summary>
internal sealed record HoldCommand : MemberCommand
{
    public override string ToLine() => "HOLD";
}

internal sealed record AbortCommand : MemberCommand
{
    public override string ToLine() => "ABORT";
}
