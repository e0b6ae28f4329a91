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
    string Path)
{
    /// <summary>Whether the mapping's runs describe all of it (always so in a full image).</summary>
    public bool IsCompleteIn(ImageKind kind) => kind == ImageKind.Full || Flags.HasFlag(VmaFlags.Complete);
}

/// <summary>
/// struct us_page_run: pages [Addr, Addr + NPages*4096) are stored in the .pages file at
/// PagesOff, and Crc is the CRC-32C of those bytes. A hole run (incremental images only) says
/// that the pages are no longer in memory and has no data: PagesOff and Crc are 0.
/// </summary>
public sealed record PageRun(ulong Addr, ulong NPages, ulong PagesOff, uint Crc, PageRunFlags Flags = PageRunFlags.None)
{
    public bool IsHole => Flags.HasFlag(PageRunFlags.Hole);

    /// <summary>Bytes of address space the run covers.</summary>
    public ulong Bytes => NPages * ImageLayout.PageSize;

    /// <summary>Bytes the run occupies in the .pages file: 0 for a hole.</summary>
    public ulong DataBytes => IsHole ? 0 : Bytes;

    /// <summary>The first address after the run.</summary>
    public ulong End => Addr + Bytes;

    /// <summary>A hole run over [addr, addr + npages*4096).</summary>
    public static PageRun Hole(ulong addr, ulong npages) => new(addr, npages, 0, 0, PageRunFlags.Hole);
}
