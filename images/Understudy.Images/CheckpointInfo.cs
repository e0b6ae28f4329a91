namespace Understudy.Images;

/// <summary>
/// One committed checkpoint as <see cref="CheckpointStore.List"/> shows it. Kind is "full",
/// "incremental", or "corrupt" when its manifest cannot be read (then Bytes and Members are 0
/// and CreatedUtc is the directory's modification time).
/// </summary>
public sealed record CheckpointInfo(string Group, string Id, long Seq, string Kind, long Bytes, DateTime CreatedUtc, int Members, string Directory)
{
    public const string CorruptKind = "corrupt";
}
