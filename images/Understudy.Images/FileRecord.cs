namespace Understudy.Images;

/// <summary>
/// struct us_rec_file and its path: the contents of a regular file a member held open for
/// writing, captured with the checkpoint (storage checkpointing). The <see cref="Size"/> bytes
/// are in the .pages file at <see cref="PagesOff"/> (4096-aligned), and <see cref="Crc"/> is
/// their CRC-32C. An incremental image always carries a file's whole contents.
/// </summary>
/// <param name="Size">The file's length at the checkpoint.</param>
public sealed record FileRecord(ulong Dev, ulong Inode, ulong Size, ulong PagesOff, uint Crc, string Path)
{
    /// <summary>The first byte after the contents in the .pages file.</summary>
    public ulong DataEnd => PagesOff + Size;
}
