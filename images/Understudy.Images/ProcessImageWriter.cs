using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>
/// Writes a .meta/.pages pair byte for byte as the native writer does. Page data is appended run
/// by run (<see cref="AppendRun"/>), then <see cref="Finish"/> writes the .meta describing it.
/// Both files are created 0600 and are on disk when Finish returns. Used by tests and by tools
/// that rewrite images, such as merging an incremental chain.
/// </summary>
public sealed class ProcessImageWriter : IDisposable
{
    private const UnixFileMode ImageFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _metaPath;
    private readonly SafeFileHandle _pages;
    private bool _finished;

    /// <summary>Creates (or truncates) both files.</summary>
    public ProcessImageWriter(string metaPath, string pagesPath)
    {
        _metaPath = metaPath;
        _pages = CreateImageFile(pagesPath);
    }

    /// <summary>Bytes written to the .pages file so far.</summary>
    public long PagesLength { get; private set; }

    /// <summary>
    /// Appends whole pages destined for address <paramref name="addr"/> and returns the run that
    /// describes them, for a <see cref="VmaRecord"/> of the image given to <see cref="Finish"/>.
    /// </summary>
    public PageRun AppendRun(ulong addr, ReadOnlySpan<byte> pages)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (addr % ImageLayout.PageSize != 0)
            throw new ArgumentException($"run address 0x{addr:x} is not page-aligned", nameof(addr));
        if (pages.IsEmpty || pages.Length % ImageLayout.PageSize != 0)
            throw new ArgumentException($"a run is a nonzero number of whole pages, got {pages.Length} bytes", nameof(pages));

        RandomAccess.Write(_pages, pages, PagesLength);
        var run = new PageRun(addr, (ulong)(pages.Length / ImageLayout.PageSize), (ulong)PagesLength, Crc32C.Compute(pages));
        PagesLength += pages.Length;
        return run;
    }

    /// <summary>
    /// Writes the .meta for <paramref name="image"/> and flushes both files to disk. The header's
    /// derived fields are computed (PagesLen is what was appended); the returned image is the one
    /// <see cref="ProcessImage.ReadMeta"/> will read back.
    /// </summary>
    /// <exception cref="ArgumentException">The image is not valid, or a run lies outside the appended pages.</exception>
    public ProcessImage Finish(ProcessImage image)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        foreach (PageRun run in image.Vmas.SelectMany(v => v.Runs))
        {
            if (run.PagesOff > (ulong)PagesLength || run.NPages > ((ulong)PagesLength - run.PagesOff) / ImageLayout.PageSize)
                throw new ArgumentException($"page run at 0x{run.Addr:x} lies outside the {PagesLength} bytes appended", nameof(image));
        }
        (byte[] meta, ProcessImage written) = EncodeChecked(image with { Header = image.Header with { PagesLen = (ulong)PagesLength } });

        RandomAccess.FlushToDisk(_pages);
        using (SafeFileHandle file = CreateImageFile(_metaPath))
        {
            RandomAccess.Write(file, meta, 0);
            RandomAccess.FlushToDisk(file);
        }
        _finished = true;
        _pages.Dispose();
        return written;
    }

    /// <summary>
    /// The .meta bytes of <paramref name="image"/>. Header.PagesLen is taken as given; record count,
    /// lengths and checksums are computed.
    /// </summary>
    /// <exception cref="ArgumentException">The result would not pass <see cref="ProcessImage.Parse"/>.</exception>
    public static byte[] EncodeMeta(ProcessImage image) => EncodeChecked(image).Meta;

    public void Dispose() => _pages.Dispose();

    // The writer never produces what the reader refuses: it decodes its own output.
    private static (byte[] Meta, ProcessImage Decoded) EncodeChecked(ProcessImage image)
    {
        byte[] meta = MetaEncoder.Encode(image);
        try
        {
            return (meta, MetaParser.Parse(meta));
        }
        catch (ImageDefect defect)
        {
            throw new ArgumentException($"image of vpid {image.Header.Vpid} cannot be written: {defect.Message}", nameof(image), defect);
        }
    }

    private static SafeFileHandle CreateImageFile(string path)
    {
        SafeFileHandle file = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
        // Set before the first byte is written, so no image data is ever readable by others.
        File.SetUnixFileMode(file, ImageFileMode);
        return file;
    }
}
