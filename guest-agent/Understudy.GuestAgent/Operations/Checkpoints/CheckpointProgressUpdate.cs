namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>Where a running checkpoint is: phase lock, prepare, write, commit or resume, and how many members answered it.</summary>
internal sealed record CheckpointProgressUpdate(string Phase, int MembersDone, int MembersTotal);

/// <summary>A committed checkpoint, as the Checkpoint call reports it.</summary>
/// <param name="Kind">"incremental" if any member wrote an incremental image, otherwise "full".</param>
/// <param name="BaseSeq">The checkpoint the incremental images apply to; 0 for a full checkpoint.</param>
internal sealed record CheckpointOutcome(
    string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, double DurationMs, long BaseSeq = 0);
