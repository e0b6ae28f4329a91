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
/// struct us_page_run: pages [Addr, Addr + NPages*4096), whose <see cref="StoredLen"/> bytes are in
/// the .pages file at <see cref="PagesOff"/>; <see cref="Crc"/> is the CRC-32C of those stored
/// bytes. A raw run stores the pages as they are (StoredLen = NPages*4096, page-aligned); a
/// compressed run (<see cref="PageRunFlags.Lz4"/>) stores one LZ4 block that decodes to them. A
/// hole run (incremental images only) says that the pages are no longer in memory and has no
/// data: PagesOff, StoredLen and Crc are 0.
/// </summary>
public sealed record PageRun(ulong Addr, ulong NPages, ulong PagesOff, ulong StoredLen, uint Crc, PageRunFlags Flags = PageRunFlags.None)
{
    public bool IsHole => Flags.HasFlag(PageRunFlags.Hole);

    public bool IsCompressed => Flags.HasFlag(PageRunFlags.Lz4);

    /// <summary>Bytes of address space the run covers: what its data decodes to.</summary>
    public ulong Bytes => NPages * ImageLayout.PageSize;

    /// <summary>The first address after the run.</summary>
    public ulong End => Addr + Bytes;

    /// <summary>A hole run over [addr, addr + npages*4096).</summary>
    public static PageRun Hole(ulong addr, ulong npages) => new(addr, npages, 0, 0, 0, PageRunFlags.Hole);

    /// <summary>A raw run: <paramref name="npages"/> pages stored as they are at <paramref name="pagesOff"/>.</summary>
    public static PageRun Raw(ulong addr, ulong npages, ulong pagesOff, uint crc) =>
        new(addr, npages, pagesOff, npages * ImageLayout.PageSize, crc);

    /// <summary>How errors name the run: its address, and where and how its data is stored.</summary>
    internal string Describe() => IsCompressed
        ? $"page run at 0x{Addr:x} ({NPages} pages as {StoredLen} bytes of LZ4 at offset {PagesOff})"
        : $"page run at 0x{Addr:x} ({NPages} pages at offset {PagesOff})";
}
