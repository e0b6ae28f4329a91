namespace Understudy.Images;

/// <summary>
/// One committed checkpoint as <see cref="CheckpointStore.List"/> shows it. Kind is "full",
/// "incremental", or "corrupt" when its manifest cannot be read (then Bytes and Members are 0
/// and CreatedUtc is the directory's modification time).
/// </summary>
/// <param name="BaseSeq">
/// The checkpoint its incremental images apply to, or, when <paramref name="Merged"/>, the one
/// they were merged onto; 0 for a checkpoint taken full.
/// </param>
/// <param name="Merged">Its incremental images were merged into full ones (Kind is then "full").</param>
public sealed record CheckpointInfo(
    string Group, string Id, long Seq, string Kind, long Bytes, DateTime CreatedUtc, int Members, string Directory,
    long BaseSeq = 0, bool Merged = false)
{
    public const string CorruptKind = "corrupt";
    public const string MergedKind = "merged";

    /// <summary>What an operator is shown: "merged" for a merged checkpoint, otherwise Kind.</summary>
    public string DisplayKind => Merged ? MergedKind : Kind;
}
