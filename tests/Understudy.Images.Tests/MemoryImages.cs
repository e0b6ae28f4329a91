using System.Buffers.Binary;
using static Understudy.Images.ImageLayout;

namespace Understudy.Images.Tests;

/// <summary>A page run of a test image: <see cref="NPages"/> pages of data of <see cref="Version"/>, or a hole.</summary>
internal sealed record RunSpec(ulong Addr, int NPages, int Version = 1, bool Hole = false)
{
    public static RunSpec Data(ulong addr, int npages, int version) => new(addr, npages, version);

    public static RunSpec HoleAt(ulong addr, int npages) => new(addr, npages, Hole: true);
}

/// <summary>A mapping of a test image and its runs.</summary>
internal sealed record VmaSpec(ulong Start, ulong End, IReadOnlyList<RunSpec> Runs, bool Complete = false, VmaKind Kind = VmaKind.Anon);

/// <summary>
/// Writes process images whose page contents are known (<see cref="Page"/>), and reads a full
/// image back as a map of pages, so that merge results can be compared page by page with a model.
/// </summary>
internal static class MemoryImages
{
    /// <summary>The contents of the page at <paramref name="addr"/> as written in <paramref name="version"/>: unique per pair.</summary>
    public static byte[] Page(ulong addr, int version)
    {
        var page = new byte[PageSize];
        ulong state = addr * 0x9E37_79B9_7F4A_7C15UL ^ (ulong)version * 0xC2B2_AE3D_27D4_EB4FUL;
        for (int i = 0; i < PageSize; i += 8)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(i), state);
        }
        return page;
    }

    /// <summary>
    /// Like <see cref="Page"/>, but what LZ4 shrinks to a few percent: the address and version,
    /// then a byte that depends on both, repeated. Still unique per pair.
    /// </summary>
    public static byte[] CompressiblePage(ulong addr, int version)
    {
        var page = new byte[PageSize];
        page.AsSpan(16).Fill((byte)(addr / PageSize * 31 + (ulong)version * 7));
        BinaryPrimitives.WriteUInt64LittleEndian(page, addr);
        BinaryPrimitives.WriteInt32LittleEndian(page.AsSpan(8), version);
        return page;
    }

    /// <summary>
    /// Writes &lt;name&gt;.meta/.pages in <paramref name="dir"/>: the records of <see cref="TestImages.Image"/>
    /// with these mappings and files. Page contents are <paramref name="pageData"/> (by default
    /// <see cref="Page"/>); with <paramref name="compress"/>, data runs are written as compressed
    /// runs where LZ4 makes them smaller.
    /// </summary>
    public static ImageFiles Write(
        string dir, string name, uint vpid, ulong seq, uint baseSeq, IEnumerable<VmaSpec> vmas,
        IEnumerable<(string Path, byte[] Contents)>? files = null, int seed = 0,
        bool compress = false, Func<ulong, int, byte[]>? pageData = null)
    {
        pageData ??= Page;
        var paths = new ImageFiles(Path.Combine(dir, name + ".meta"), Path.Combine(dir, name + ".pages"));
        using var writer = new ProcessImageWriter(paths.Meta, paths.Pages);
        var records = new List<VmaRecord>();
        foreach (VmaSpec vma in vmas)
        {
            var runs = new List<PageRun>();
            foreach (RunSpec run in vma.Runs)
            {
                if (run.Hole)
                {
                    runs.Add(PageRun.Hole(run.Addr, (ulong)run.NPages));
                    continue;
                }
                if (compress)
                {
                    ProcessImageWriter.CompressedRunBuilder compressed = writer.BeginCompressedRun(run.Addr);
                    for (int i = 0; i < run.NPages; i++)
                    {
                        compressed.Append(pageData(run.Addr + (ulong)i * PageSize, run.Version));
                    }

                    runs.AddRange(compressed.End());
                    continue;
                }
                ProcessImageWriter.PageRunBuilder builder = writer.BeginRun(run.Addr);
                for (int i = 0; i < run.NPages; i++)
                {
                    builder.Append(pageData(run.Addr + (ulong)i * PageSize, run.Version));
                }

                runs.Add(builder.End());
            }
            records.Add(TestImages.Vma(vma.Start, vma.End, VmaProt.Read | VmaProt.Write, vma.Kind, "", runs,
                vma.Complete ? VmaFlags.Complete : VmaFlags.None));
        }
        var fileRecords = (files ?? []).Select((f, i) => writer.AppendFile(0x803, 5000 + (ulong)i, f.Path, f.Contents)).ToList();
        ImageKind kind = baseSeq == 0 ? ImageKind.Full : ImageKind.Incremental;
        ProcessImage image = TestImages.Image(vpid, seq, kind, baseSeq, records) with { Files = fileRecords };
        if (seed != 0)
        {
            image = image with { Misc = image.Misc with { PendingShared = (ulong)seed } };
        }

        writer.Finish(image);
        return paths;
    }

    /// <summary>Every page with data of an image (holes excluded), by address, read (and decoded) from its .pages file.</summary>
    public static SortedDictionary<ulong, byte[]> ReadPages(ImageFiles files)
    {
        ProcessImage image = ProcessImage.ReadMeta(files.Meta);
        var pages = new SortedDictionary<ulong, byte[]>();
        foreach (PageRun run in image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole))
        {
            byte[] data = PageRunReader.ReadPages(files.Pages, run);
            for (ulong i = 0; i < run.NPages; i++)
            {
                pages.Add(run.Addr + i * PageSize, data.AsSpan((int)(i * PageSize), PageSize).ToArray());
            }
        }
        return pages;
    }

    /// <summary>
    /// What a full image of the increment's instant holds, computed page by page from the
    /// rules of us_image.h, independently of the streaming merge.
    /// </summary>
    public static SortedDictionary<ulong, byte[]> Apply(SortedDictionary<ulong, byte[]> basePages, ImageFiles increment)
    {
        ProcessImage inc = ProcessImage.ReadMeta(increment.Meta);
        SortedDictionary<ulong, byte[]> data = ReadPages(increment);
        var result = new SortedDictionary<ulong, byte[]>();
        foreach (VmaRecord vma in inc.Vmas)
        {
            for (ulong addr = vma.Start; addr < vma.End; addr += PageSize)
            {
                PageRun? run = vma.Runs.FirstOrDefault(r => r.Addr <= addr && addr < r.End);
                if (run is { IsHole: false })
                {
                    result[addr] = data[addr];
                }
                else if (run is null && !vma.Flags.HasFlag(VmaFlags.Complete) && basePages.TryGetValue(addr, out byte[]? page))
                {
                    result[addr] = page;
                }
            }
        }
        return result;
    }

    public static void AssertSamePages(SortedDictionary<ulong, byte[]> expected, SortedDictionary<ulong, byte[]> actual)
    {
        Assert.Equal(expected.Keys.Select(a => $"0x{a:x}"), actual.Keys.Select(a => $"0x{a:x}"));
        foreach ((ulong addr, byte[] page) in expected)
        {
            Assert.True(page.AsSpan().SequenceEqual(actual[addr]), $"page 0x{addr:x} differs");
        }
    }
}
