using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>What the coordinator asks the members to write: a full image, or an incremental one on checkpoint <paramref name="BaseSeq"/>.</summary>
/// <param name="Reason">Why, for the log.</param>
internal sealed record CheckpointPlan(string Kind, long BaseSeq, string Reason)
{
    public bool IsIncremental => Kind == CheckpointManifest.IncrementalKind;

    public static CheckpointPlan Full(string reason) => new(CheckpointManifest.FullKind, 0, reason);

    public static CheckpointPlan Incremental(long baseSeq, string reason) => new(CheckpointManifest.IncrementalKind, baseSeq, reason);
}
