namespace Understudy.Images;

/// <summary>struct us_rec_vma, its page runs and its path.</summary>
public sealed record VmaRecord(
    ulong Start,
    ulong End,
    VmaProt Prot,
    VmaFlags Flags,
    VmaKind Kind,
    ulong FileOffset,
    ulong Dev,
    ulong Inode,
    ulong ObjectSize,
    IReadOnlyList<PageRun> Runs,
    string Path);

/// <summary>
/// struct us_page_run: pages [Addr, Addr + NPages*4096) are stored in the .pages file at
/// PagesOff, and Crc is the CRC-32C of those bytes.
/// </summary>
public sealed record PageRun(ulong Addr, ulong NPages, ulong PagesOff, uint Crc)
{
    public ulong Bytes => NPages * ImageLayout.PageSize;
}
