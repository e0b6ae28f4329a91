using Understudy.Images;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>
/// A process's memory as the tests model it, and its images as the native writer would make
/// them. Its memory is one anonymous mapping of <see cref="PageCount"/> pages, each holding data
/// of a version (0: never written or dropped). A full image holds every page with data, an
/// incremental one the pages written since the last image (holes for pages dropped).
/// </summary>
internal sealed class SimulatedProcess(int vpid, string app)
{
    /// <summary>Where the mapping starts.</summary>
    public const ulong MappingStart = 0x7f00_0000_0000;

    /// <summary>The version of each page's data; 0 when the page has none.</summary>
    private int[] _versions = [1];
    private readonly HashSet<int> _dirty = [];
    private readonly Dictionary<long, int[]> _snapshots = [];

    public int Vpid { get; } = vpid;
    public string App { get; } = app;

    public int PageCount => _versions.Length;

    /// <summary>Regular files captured with every image (storage checkpointing): path and contents.</summary>
    public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);

    /// <summary>Gives the mapping <paramref name="pages"/> pages, all written.</summary>
    public void SetPages(int pages)
    {
        _versions = [.. Enumerable.Repeat(1, pages)];
        _dirty.Clear();
    }

    /// <summary>The application writes to these pages.</summary>
    public void Touch(params int[] pages)
    {
        foreach (var page in pages)
        {
            _versions[page]++;
            _dirty.Add(page);
        }
    }

    /// <summary>The application drops these pages (MADV_DONTNEED): they read as zero.</summary>
    public void Drop(params int[] pages)
    {
        foreach (var page in pages)
        {
            _versions[page] = 0;
            _dirty.Add(page);
        }
    }

    /// <summary>The contents of every page with data at checkpoint <paramref name="seq"/>, by address.</summary>
    public SortedDictionary<ulong, byte[]> PagesAt(long seq)
    {
        var pages = new SortedDictionary<ulong, byte[]>();
        var versions = _snapshots[seq];
        for (var i = 0; i < versions.Length; i++)
        {
            if (versions[i] != 0)
            {
                pages[Address(i)] = PageData(i, versions[i]);
            }
        }
        return pages;
    }

    /// <summary>
    /// Writes &lt;vpid&gt;.meta/.pages into <paramref name="dir"/>: a full image of every page with
    /// data, or, on <paramref name="baseSeq"/>, the pages written since the last image.
    /// </summary>
    /// <returns>the sizes of the two files</returns>
    public (long Meta, long Pages) WriteImage(string dir, long seq, long baseSeq)
    {
        var vpid = (uint)Vpid;
        using var writer = new ProcessImageWriter(Path.Combine(dir, $"{vpid}.meta"), Path.Combine(dir, $"{vpid}.pages"));
        var runs = new List<PageRun>();
        ProcessImageWriter.PageRunBuilder? open = null;
        for (var i = 0; i < _versions.Length; i++)
        {
            var saved = baseSeq == 0 ? _versions[i] != 0 : _dirty.Contains(i) && _versions[i] != 0;
            if (open is not null && (!saved || open.NextAddr != Address(i)))
            {
                runs.Add(open.End());
                open = null;
            }
            if (saved)
            {
                open ??= writer.BeginRun(Address(i));
                open.Append(PageData(i, _versions[i]));
            }
            else if (baseSeq != 0 && _dirty.Contains(i))
            {
                runs.Add(PageRun.Hole(Address(i), 1));
            }
        }
        if (open is not null)
        {
            runs.Add(open.End());
        }
        var files = Files.Select((f, i) => writer.AppendFile(0x803, 9000 + (ulong)i, f.Key, f.Value)).ToList();
        var image = new ProcessImage(
            new MetaHeader(baseSeq == 0 ? ImageKind.Full : ImageKind.Incremental, vpid, (ulong)seq, (uint)baseSeq),
            new ProcRecord(vpid, 1, vpid, 1, 0, 0, 0, 18, 0, 0, MmLayout.FromArray(new ulong[ImageLayout.MmFieldCount]),
                "/usr/bin/" + App, "/", App, []),
            [new VmaRecord(MappingStart, Address(_versions.Length), VmaProt.Read | VmaProt.Write, VmaFlags.None, VmaKind.Anon,
                0, 0, 0, 0, runs, "")],
            [new ThreadRecord(vpid, false, 0, App)],
            [],
            [],
            new MiscRecord([default, default, default], new ulong[ImageLayout.RlimitCount], 0)) { Files = files };
        writer.Finish(image);
        _snapshots[seq] = (int[])_versions.Clone();
        _dirty.Clear();
        return (new FileInfo(Path.Combine(dir, $"{vpid}.meta")).Length, new FileInfo(Path.Combine(dir, $"{vpid}.pages")).Length);
    }

    /// <summary>The contents of page <paramref name="page"/> at <paramref name="version"/>: unique per process, page and version.</summary>
    public byte[] PageData(int page, int version)
    {
        var data = new byte[ImageLayout.PageSize];
        new Random(unchecked(Vpid * 1_000_003 + page * 1009 + version)).NextBytes(data);
        return data;
    }

    private static ulong Address(int page) => MappingStart + (ulong)page * ImageLayout.PageSize;
}
