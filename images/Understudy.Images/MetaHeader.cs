namespace Understudy.Images;

/// <summary>
/// struct us_meta_header without its constants (magic, version, header_size). The positional
/// values describe the image; the init-only ones are derived from the bytes: the reader fills
/// them in, and the writer computes them, ignoring what the caller set.
/// </summary>
/// <param name="Kind">Full, or incremental over the image of checkpoint <paramref name="BaseSeq"/>.</param>
/// <param name="Vpid">Pid inside the group's pid namespace.</param>
/// <param name="CheckpointSeq">Sequence number of the checkpoint this image belongs to.</param>
/// <param name="BaseSeq">Incremental: seq of the image it applies to; 0 for full.</param>
public sealed record MetaHeader(ImageKind Kind, uint Vpid, ulong CheckpointSeq, uint BaseSeq = 0)
{
    public uint RecordCount { get; init; }

    /// <summary>Bytes of records after the header, padding included.</summary>
    public ulong RecordsLen { get; init; }

    /// <summary>Exact size of the .pages file.</summary>
    public ulong PagesLen { get; init; }

    public uint RecordsCrc { get; init; }

    public uint HeaderCrc { get; init; }
}
