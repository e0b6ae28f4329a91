namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>The phase names of CheckpointProgress.phase (agent_messages.proto).</summary>
internal static class CheckpointPhases
{
    public const string Lock = "lock";
    public const string Prepare = "prepare";
    public const string Write = "write";
    public const string Commit = "commit";
    public const string Resume = "resume";
    public const string Done = "done";
}
