namespace Understudy.Images;

/// <summary>
/// struct us_rec_file and its path: the contents of a regular file a member held open for
/// writing (storage checkpointing), or of a file without a name it held open (unlinked, or a
/// memfd: <see cref="IsUnlinked"/>), captured with the checkpoint. The <see cref="Size"/> bytes
/// are in the .pages file at <see cref="PagesOff"/> (4096-aligned), and <see cref="Crc"/> is
/// their CRC-32C. An incremental image always carries a file's whole contents.
/// </summary>
/// <param name="Size">The file's length at the checkpoint.</param>
/// <param name="Flags">US_FILE_F_*: <see cref="Unlinked"/> or 0.</param>
public sealed record FileRecord(ulong Dev, ulong Inode, ulong Size, ulong PagesOff, uint Crc, string Path, uint Flags = 0)
{
    /// <summary>US_FILE_F_UNLINKED: no name; FD records of the same dev/inode open these contents again.</summary>
    public const uint Unlinked = 1;

    /// <summary>Whether the file had no name (<see cref="Unlinked"/>): nothing is written back to <see cref="Path"/>.</summary>
    public bool IsUnlinked => (Flags & Unlinked) != 0;

    /// <summary>The first byte after the contents in the .pages file.</summary>
    public ulong DataEnd => PagesOff + Size;
}
