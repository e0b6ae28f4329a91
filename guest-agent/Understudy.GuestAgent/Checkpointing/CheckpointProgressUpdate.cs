namespace Understudy.GuestAgent.Checkpointing;

/// <summary>Where a running checkpoint is: phase lock, prepare, write, commit or resume, and how many members answered it.</summary>
internal sealed record CheckpointProgressUpdate(string Phase, int MembersDone, int MembersTotal);

/// <summary>A committed checkpoint, as the Checkpoint call reports it.</summary>
internal sealed record CheckpointOutcome(
    string Group, string Id, string Kind, long Bytes, int Members, double FrozenMs, double DurationMs);
