using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>
/// Writes a .meta/.pages pair byte for byte as the native writer does. Page data is appended run
/// by run, raw (<see cref="AppendRun"/>, or streamed with <see cref="BeginRun"/>) or compressed
/// where that saves space (<see cref="AppendCompressedRun"/>, <see cref="BeginCompressedRun"/>),
/// file contents with <see cref="AppendFile"/> or <see cref="BeginFile"/> (a SysV segment's with
/// <see cref="AppendSegment"/>), then
/// <see cref="Finish"/> writes the .meta describing it. Raw runs and file contents start
/// 4096-aligned in .pages, as a restorer that maps them needs; compressed runs, which are read
/// and decoded rather than mapped, 8-aligned. Both files are created 0600 and are on disk when
/// Finish returns. Used by tests and by tools that rewrite images, such as the merge of an
/// incremental image (<see cref="ImageMerger"/>).
/// </summary>
public sealed class ProcessImageWriter : IDisposable
{
    private const UnixFileMode ImageFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const int BufferSize = 1 << 20;

    private readonly string _metaPath;
    private readonly SafeFileHandle _pages;
    // Merges append a page at a time; collecting them saves a system call per page.
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _buffered;
    private long _flushed;
    private object? _open;
    private bool _finished;
    // Compressed runs only: the pages of one chunk and their LZ4 block, allocated on first use.
    private byte[]? _chunk;
    private byte[]? _block;

    /// <summary>Creates (or truncates) both files.</summary>
    public ProcessImageWriter(string metaPath, string pagesPath)
    {
        _metaPath = metaPath;
        _pages = CreateImageFile(pagesPath);
    }

    /// <summary>Bytes written to the .pages file so far.</summary>
    public long PagesLength => _flushed + _buffered;

    /// <summary>
    /// Appends whole pages destined for address <paramref name="addr"/> and returns the run that
    /// describes them, for a <see cref="VmaRecord"/> of the image given to <see cref="Finish"/>.
    /// </summary>
    public PageRun AppendRun(ulong addr, ReadOnlySpan<byte> pages)
    {
        if (pages.IsEmpty || pages.Length % ImageLayout.PageSize != 0)
        {
            throw new ArgumentException($"a run is a nonzero number of whole pages, got {pages.Length} bytes", nameof(pages));
        }

        PageRunBuilder run = BeginRun(addr);
        run.Append(pages);
        return run.End();
    }

    /// <summary>
    /// Starts a run at <paramref name="addr"/> whose pages are appended piece by piece, so that a
    /// run of any size streams through bounded memory. Until it ends, nothing else may be appended.
    /// </summary>
    public PageRunBuilder BeginRun(ulong addr)
    {
        ThrowIfClosedOrBusy();
        if (addr % ImageLayout.PageSize != 0)
        {
            throw new ArgumentException($"run address 0x{addr:x} is not page-aligned", nameof(addr));
        }

        PadTo(ImageLayout.PageSize);
        var run = new PageRunBuilder(this, addr, (ulong)PagesLength);
        _open = run;
        return run;
    }

    /// <summary>
    /// Appends whole pages destined for <paramref name="addr"/> as compressed runs: every chunk of
    /// <see cref="ImageLayout.Lz4RunPages"/> pages (the last one may be shorter) becomes an LZ4
    /// run if that makes it smaller, otherwise stays raw, consecutive raw chunks forming one run.
    /// Returns the runs in address order.
    /// </summary>
    public IReadOnlyList<PageRun> AppendCompressedRun(ulong addr, ReadOnlySpan<byte> pages)
    {
        if (pages.IsEmpty || pages.Length % ImageLayout.PageSize != 0)
        {
            throw new ArgumentException($"a run is a nonzero number of whole pages, got {pages.Length} bytes", nameof(pages));
        }

        CompressedRunBuilder run = BeginCompressedRun(addr);
        run.Append(pages);
        return run.End();
    }

    /// <summary>
    /// Starts pages at <paramref name="addr"/> that are appended piece by piece and stored as by
    /// <see cref="AppendCompressedRun"/>, through bounded memory. Until it ends, nothing else may be appended.
    /// </summary>
    public CompressedRunBuilder BeginCompressedRun(ulong addr)
    {
        ThrowIfClosedOrBusy();
        if (addr % ImageLayout.PageSize != 0)
        {
            throw new ArgumentException($"run address 0x{addr:x} is not page-aligned", nameof(addr));
        }

        _chunk ??= new byte[Lz4Pages.MaxRunBytes];
        _block ??= new byte[Lz4Pages.MaxBlockBytes];
        var run = new CompressedRunBuilder(this, addr);
        _open = run;
        return run;
    }

    /// <summary>Appends a file's whole contents and returns its FILE record.</summary>
    public FileRecord AppendFile(ulong dev, ulong inode, string path, ReadOnlySpan<byte> contents)
    {
        FileContentsBuilder file = BeginFile();
        file.Append(contents);
        return file.End(dev, inode, path);
    }

    /// <summary>
    /// Appends a SysV shared memory segment's whole contents and returns its IPC record: <paramref name="shm"/>
    /// with their place, size and checksum.
    /// </summary>
    public IpcRecord AppendSegment(IpcRecord shm, ReadOnlySpan<byte> contents)
    {
        FileContentsBuilder segment = BeginFile();
        segment.Append(contents);
        return segment.EndSegment(shm);
    }

    /// <summary>Starts a file's (or a segment's) contents, appended piece by piece; see <see cref="BeginRun"/>.</summary>
    public FileContentsBuilder BeginFile()
    {
        ThrowIfClosedOrBusy();
        PadTo(ImageLayout.PageSize);
        var file = new FileContentsBuilder(this, (ulong)PagesLength);
        _open = file;
        return file;
    }

    /// <summary>
    /// Writes the .meta for <paramref name="image"/> and flushes both files to disk. The header's
    /// derived fields are computed (PagesLen is what was appended); the returned image is the one
    /// <see cref="ProcessImage.ReadMeta"/> will read back.
    /// </summary>
    /// <exception cref="ArgumentException">The image is not valid, or a run or file lies outside the appended pages.</exception>
    public ProcessImage Finish(ProcessImage image)
    {
        ThrowIfClosedOrBusy();
        ulong length = (ulong)PagesLength;
        foreach (PageRun run in image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole))
        {
            if (run.PagesOff > length || run.StoredLen > length - run.PagesOff)
            {
                throw new ArgumentException($"page run at 0x{run.Addr:x} lies outside the {length} bytes appended", nameof(image));
            }
        }
        foreach (FileRecord file in image.Files)
        {
            if (file.PagesOff > length || file.Size > length - file.PagesOff)
            {
                throw new ArgumentException($"contents of file {file.Path} lie outside the {length} bytes appended", nameof(image));
            }
        }
        foreach (IpcRecord shm in image.Ipc.Where(o => o.Kind == IpcKind.Shm))
        {
            if (shm.PagesOff > length || shm.Size > length - shm.PagesOff)
            {
                throw new ArgumentException($"contents of {shm.Describe()} lie outside the {length} bytes appended", nameof(image));
            }
        }
        (byte[] meta, ProcessImage written) = EncodeChecked(image with { Header = image.Header with { PagesLen = length } });

        Flush();
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

    private void Write(ReadOnlySpan<byte> data)
    {
        if (data.Length >= BufferSize)
        {
            Flush();
            RandomAccess.Write(_pages, data, _flushed);
            _flushed += data.Length;
            return;
        }
        if (_buffered + data.Length > BufferSize)
        {
            Flush();
        }

        data.CopyTo(_buffer.AsSpan(_buffered));
        _buffered += data.Length;
    }

    private void Flush()
    {
        if (_buffered == 0)
        {
            return;
        }

        RandomAccess.Write(_pages, _buffer.AsSpan(0, _buffered), _flushed);
        _flushed += _buffered;
        _buffered = 0;
    }

    /// <summary>Zeros up to the next multiple of <paramref name="alignment"/>, so that whatever comes next starts there.</summary>
    private void PadTo(int alignment)
    {
        int partial = (int)(PagesLength % alignment);
        if (partial != 0)
        {
            Write(new byte[alignment - partial]);
        }
    }

    private void Close(object region)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (!ReferenceEquals(_open, region))
        {
            throw new InvalidOperationException("this run or file was already ended");
        }

        _open = null;
    }

    /// <summary>What both run builders check before they take pages: still open, whole pages.</summary>
    private void CheckAppend(object run, ulong addr, int length)
    {
        if (!ReferenceEquals(_open, run))
        {
            throw new InvalidOperationException($"the run at 0x{addr:x} was already ended");
        }

        if (length % ImageLayout.PageSize != 0)
        {
            throw new ArgumentException($"a run holds whole pages, got {length} bytes", "pages");
        }
    }

    private void ThrowIfClosedOrBusy()
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (_open is not null)
        {
            throw new InvalidOperationException("a run or file is still being appended; end it first");
        }
    }

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
        SafeFileHandle file = NoFollowFile.Create(path, ImageFileMode);
        // Set before the first byte is written, so no image data is ever readable by others.
        File.SetUnixFileMode(file, ImageFileMode);
        return file;
    }

    /// <summary>A page run being appended; see <see cref="BeginRun"/>.</summary>
    public sealed class PageRunBuilder
    {
        private readonly ProcessImageWriter _writer;
        private readonly ulong _pagesOff;
        private uint _crc;

        internal PageRunBuilder(ProcessImageWriter writer, ulong addr, ulong pagesOff)
        {
            _writer = writer;
            Addr = addr;
            _pagesOff = pagesOff;
        }

        public ulong Addr { get; }

        /// <summary>Pages appended so far.</summary>
        public ulong NPages { get; private set; }

        /// <summary>The address the next appended page will have.</summary>
        public ulong NextAddr => Addr + NPages * ImageLayout.PageSize;

        /// <summary>Appends whole pages (any number, including none).</summary>
        public void Append(ReadOnlySpan<byte> pages)
        {
            _writer.CheckAppend(this, Addr, pages.Length);
            _writer.Write(pages);
            _crc = Crc32C.Compute(pages, _crc);
            NPages += (ulong)(pages.Length / ImageLayout.PageSize);
        }

        /// <summary>Ends the run and returns its description.</summary>
        /// <exception cref="InvalidOperationException">No page was appended: a run has at least one.</exception>
        public PageRun End()
        {
            if (NPages == 0)
            {
                throw new InvalidOperationException($"the run at 0x{Addr:x} has no pages; a run has at least one");
            }

            _writer.Close(this);
            return PageRun.Raw(Addr, NPages, _pagesOff, _crc);
        }
    }

    /// <summary>Pages being appended as compressed runs; see <see cref="BeginCompressedRun"/>.</summary>
    public sealed class CompressedRunBuilder
    {
        private readonly ProcessImageWriter _writer;
        private readonly List<PageRun> _runs = [];
        private int _buffered; // bytes of the current chunk in _writer._chunk
        // The raw run that chunks which do not compress are added to, while nothing comes between.
        private ulong _rawAddr, _rawOff, _rawPages;
        private uint _rawCrc;

        internal CompressedRunBuilder(ProcessImageWriter writer, ulong addr)
        {
            _writer = writer;
            Addr = addr;
        }

        public ulong Addr { get; }

        /// <summary>Pages appended so far.</summary>
        public ulong NPages { get; private set; }

        /// <summary>The address the next appended page will have.</summary>
        public ulong NextAddr => Addr + NPages * ImageLayout.PageSize;

        /// <summary>Appends whole pages (any number, including none).</summary>
        public void Append(ReadOnlySpan<byte> pages)
        {
            _writer.CheckAppend(this, Addr, pages.Length);
            byte[] chunk = _writer._chunk!;
            while (!pages.IsEmpty)
            {
                int n = Math.Min(pages.Length, chunk.Length - _buffered);
                pages[..n].CopyTo(chunk.AsSpan(_buffered));
                _buffered += n;
                NPages += (ulong)(n / ImageLayout.PageSize);
                pages = pages[n..];
                if (_buffered == chunk.Length)
                {
                    StoreChunk();
                }
            }
        }

        /// <summary>Ends the pages and returns the runs that describe them, in address order.</summary>
        /// <exception cref="InvalidOperationException">No page was appended: a run has at least one.</exception>
        public IReadOnlyList<PageRun> End()
        {
            if (NPages == 0)
            {
                throw new InvalidOperationException($"the run at 0x{Addr:x} has no pages; a run has at least one");
            }

            if (!ReferenceEquals(_writer._open, this))
            {
                throw new InvalidOperationException($"the run at 0x{Addr:x} was already ended");
            }

            StoreChunk();
            EndRaw();
            _writer.Close(this);
            return _runs;
        }

        private void StoreChunk()
        {
            if (_buffered == 0)
            {
                return;
            }

            ReadOnlySpan<byte> pages = _writer._chunk!.AsSpan(0, _buffered);
            ulong addr = NextAddr - (ulong)_buffered;
            ulong npages = (ulong)(_buffered / ImageLayout.PageSize);
            _buffered = 0;
            int length = Lz4Pages.Compress(pages, _writer._block!);
            if (length > 0)
            {
                EndRaw();
                _writer.PadTo(ImageLayout.Lz4RunAlignment);
                ReadOnlySpan<byte> block = _writer._block!.AsSpan(0, length);
                ulong pagesOff = (ulong)_writer.PagesLength;
                _writer.Write(block);
                _runs.Add(new PageRun(addr, npages, pagesOff, (ulong)length, Crc32C.Compute(block), PageRunFlags.Lz4));
                return;
            }
            if (_rawPages == 0)
            {
                _writer.PadTo(ImageLayout.PageSize);
                (_rawAddr, _rawOff, _rawCrc) = (addr, (ulong)_writer.PagesLength, 0);
            }
            _writer.Write(pages);
            _rawCrc = Crc32C.Compute(pages, _rawCrc);
            _rawPages += npages;
        }

        private void EndRaw()
        {
            if (_rawPages == 0)
            {
                return;
            }

            _runs.Add(PageRun.Raw(_rawAddr, _rawPages, _rawOff, _rawCrc));
            _rawPages = 0;
        }
    }

    /// <summary>A file's contents being appended; see <see cref="BeginFile"/>.</summary>
    public sealed class FileContentsBuilder
    {
        private readonly ProcessImageWriter _writer;
        private readonly ulong _pagesOff;
        private uint _crc;

        internal FileContentsBuilder(ProcessImageWriter writer, ulong pagesOff)
        {
            _writer = writer;
            _pagesOff = pagesOff;
        }

        /// <summary>Bytes appended so far.</summary>
        public ulong Size { get; private set; }

        public void Append(ReadOnlySpan<byte> contents)
        {
            if (!ReferenceEquals(_writer._open, this))
            {
                throw new InvalidOperationException("these file contents were already ended");
            }

            _writer.Write(contents);
            _crc = Crc32C.Compute(contents, _crc);
            Size += (ulong)contents.Length;
        }

        /// <summary>Ends the contents (padded to a page boundary in .pages, as the native writer does) and returns their FILE record.</summary>
        public FileRecord End(ulong dev, ulong inode, string path, uint flags = 0)
        {
            _writer.Close(this);
            _writer.PadTo(ImageLayout.PageSize);
            return new FileRecord(dev, inode, Size, _pagesOff, _crc, path, flags);
        }

        /// <summary>Ends the contents of a SysV shared memory segment (padded alike) and returns its IPC record.</summary>
        public IpcRecord EndSegment(IpcRecord shm)
        {
            _writer.Close(this);
            _writer.PadTo(ImageLayout.PageSize);
            return shm with { Size = Size, PagesOff = _pagesOff, Crc = _crc };
        }
    }
}
