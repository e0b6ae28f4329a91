using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>What a merge carried over, for logs and tests.</summary>
/// <param name="PagesFromBase">Unchanged pages taken from the base image.</param>
/// <param name="PagesFromIncrement">Pages the increment saved.</param>
/// <param name="HolePages">Pages the increment says are no longer in memory (left out).</param>
/// <param name="DroppedBasePages">Base pages not carried over: overwritten, now holes, or in mappings that are gone or complete.</param>
/// <param name="FileBytes">Bytes of file contents (FILE records) copied from the increment.</param>
public sealed record MergeStatistics(long PagesFromBase, long PagesFromIncrement, long HolePages, long DroppedBasePages, long FileBytes);

/// <summary>The full image a merge wrote, as <see cref="ProcessImage.ReadMeta"/> will read it back.</summary>
public sealed record MergeResult(ProcessImage Image, MergeStatistics Statistics);

/// <summary>One incremental image of a chain, and the vpid of the image below it that it applies to.</summary>
/// <param name="BaseVpid">
/// The vpid of the image the increment applies to: its own when null, or its parent's for a
/// process forked since the checkpoint below (<see cref="ManifestMember.BaseVpid"/>).
/// </param>
public sealed record ChainLink(ImageFiles Files, uint? BaseVpid = null);

/// <summary>
/// Applies incremental process images to their base and writes the result as a full image
/// (docs/image-format.md, "Merging an incremental image"). The output's mappings are the
/// increment's; a page of a mapping comes from the increment if the increment has a run there
/// (none for a hole), otherwise, unless the mapping is complete, from the base if the base has
/// it. Everything else (process, threads, descriptors, signal actions, limits, timers, file
/// contents, IPC objects with their segments' contents, memory advice) is the increment's.
/// A chain of increments (<see cref="MergeChain"/>) is merged in one pass: the result is the
/// merge of the newest increment onto the merge of the one before, and so on down to the full
/// image, byte for byte, without writing the images in between.
/// <para>
/// Every input is streamed through bounded memory, each read once in address order, and every
/// input run's checksum is checked as it is read (a compressed run's is checked on its stored
/// bytes, and the run must decode to exactly its pages): a corrupt input is refused with
/// <see cref="ImageFormatException"/>, never merged. The output is a function of the inputs
/// only: runs coalesced in address order and written front to back, file contents after them,
/// so the same inputs always give the same bytes. If any input has a compressed run, the
/// output is compressed too, in chunks of at most 64 pages, each stored raw where LZ4 does not
/// make it smaller; otherwise every run is raw.
/// </para>
/// </summary>
public static class ImageMerger
{
    private const int ChunkPages = 256; // 1 MiB reads

    /// <summary>Merges <paramref name="increment"/> into <paramref name="baseImage"/>, writing <paramref name="output"/>.</summary>
    /// <param name="pace">
    /// Called before every chunk of input is read: it may block to pause the merge (the agent
    /// holds a merge while the group is being checkpointed) or throw to stop it.
    /// </param>
    /// <param name="baseVpid">
    /// The vpid of the image the increment applies to, which the base must be: the increment's
    /// own vpid when null. A process forked since the base checkpoint applies its first
    /// increment to its parent's image (<see cref="ManifestMember.BaseVpid"/>). The output keeps
    /// the increment's vpid.
    /// </param>
    /// <exception cref="ImageFormatException">An input is missing, corrupt, or does not belong to the other.</exception>
    /// <exception cref="IOException">Writing the output failed (the partial output is removed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (the partial output is removed).</exception>
    public static MergeResult Merge(
        ImageFiles baseImage, ImageFiles increment, ImageFiles output,
        Action? pace = null, CancellationToken cancellationToken = default, uint? baseVpid = null)
    {
        ArgumentNullException.ThrowIfNull(increment);
        return MergeChain(baseImage, [new ChainLink(increment, baseVpid)], output, pace, cancellationToken);
    }

    /// <summary>
    /// Merges a chain in one pass: <paramref name="full"/>, then each of <paramref name="increments"/>
    /// applied to the one before (oldest first), writing the newest increment's checkpoint as a
    /// full image to <paramref name="output"/>.
    /// </summary>
    /// <param name="pace">Called before every chunk of input is read: it may block or throw.</param>
    /// <exception cref="ImageFormatException">An input is missing, corrupt, or does not belong to the one below it.</exception>
    /// <exception cref="IOException">Writing the output failed (the partial output is removed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (the partial output is removed).</exception>
    public static MergeResult MergeChain(
        ImageFiles full, IReadOnlyList<ChainLink> increments, ImageFiles output,
        Action? pace = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(full);
        ArgumentNullException.ThrowIfNull(increments);
        ArgumentNullException.ThrowIfNull(output);
        if (increments.Count == 0)
        {
            throw new ArgumentException("a merge needs at least one incremental image", nameof(increments));
        }
        var inputs = increments.Select(l => l.Files).Prepend(full).SelectMany(f => new[] { Path.GetFullPath(f.Meta), Path.GetFullPath(f.Pages) }).ToList();
        if (inputs.Contains(Path.GetFullPath(output.Meta)) || inputs.Contains(Path.GetFullPath(output.Pages)))
        {
            throw new ArgumentException("a merge cannot write over one of its inputs", nameof(output));
        }

        ProcessImage fullImage = ProcessImage.ReadMeta(full.Meta);
        CheckFull(fullImage, full);
        ProcessImage below = fullImage;
        var images = new List<ProcessImage>(increments.Count);
        foreach (var link in increments)
        {
            ProcessImage inc = ProcessImage.ReadMeta(link.Files.Meta);
            CheckLink(below, inc, link);
            images.Add(inc);
            below = inc;
        }

        var sources = new List<RunSource>(increments.Count + 1);
        try
        {
            sources.Add(RunSource.Open(full.Pages, fullImage));
            IPageSource layered = sources[0];
            LayeredSource? top = null;
            for (int i = 0; i < images.Count; i++)
            {
                var source = RunSource.Open(increments[i].Files.Pages, images[i]);
                sources.Add(source);
                top = new LayeredSource(layered, source, images[i].Vmas);
                layered = top;
            }
            // Whoever wrote the inputs compressed them; the merged image should not grow back to raw.
            bool compress = sources.Any(s => s.IsCompressed);
            var merge = new MergeRun(top!, sources[^1], compress, pace, cancellationToken);
            try
            {
                using var writer = new ProcessImageWriter(output.Meta, output.Pages);
                ProcessImage written = merge.Run(images[^1], writer);
                return new MergeResult(written, merge.Statistics);
            }
            catch
            {
                // A half-written image must not be mistaken for a merged one.
                TryDelete(output.Meta);
                TryDelete(output.Pages);
                throw;
            }
        }
        finally
        {
            foreach (var source in sources)
            {
                source.Dispose();
            }
        }
    }

    private static void CheckFull(ProcessImage full, ImageFiles files)
    {
        if (full.Header.Kind != ImageKind.Full)
        {
            throw ImageLocation.OfFile(files.Meta).Unmergeable(
                $"it is itself incremental (on checkpoint {full.Header.BaseSeq}); merge it into its own base first");
        }
    }

    private static void CheckLink(ProcessImage below, ProcessImage inc, ChainLink link)
    {
        ImageLocation incLocation = ImageLocation.OfFile(link.Files.Meta);
        if (inc.Header.Kind != ImageKind.Incremental)
        {
            throw incLocation.Unmergeable("it is a full image already; only an incremental image is merged");
        }

        uint baseVpid = link.BaseVpid ?? inc.Header.Vpid;
        if (below.Header.Vpid != baseVpid)
        {
            throw incLocation.Unmergeable(baseVpid == inc.Header.Vpid
                ? $"it is of vpid {inc.Header.Vpid} but the base image is of vpid {below.Header.Vpid}"
                : $"it (vpid {inc.Header.Vpid}) applies to the image of vpid {baseVpid} but the base image is of vpid {below.Header.Vpid}");
        }
        if (inc.Header.BaseSeq != below.Header.CheckpointSeq)
        {
            throw incLocation.Unmergeable(
                $"it applies to checkpoint {inc.Header.BaseSeq} but the base image belongs to checkpoint {below.Header.CheckpointSeq}");
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: whoever owns the directory cleans up what is not referenced.
        }
    }

    /// <summary>
    /// Writes the merged image: the newest increment's mappings, each filled with what
    /// <paramref name="top"/> (the whole chain, layered) has in it, then its records and file contents.
    /// </summary>
    private sealed class MergeRun(LayeredSource top, RunSource newest, bool compress, Action? pace, CancellationToken cancellationToken)
    {
        private readonly List<PageRun> _runs = [];
        private ProcessImageWriter? _writer;
        // The output's open run: raw, or compressed when the merge compresses.
        private ProcessImageWriter.PageRunBuilder? _open;
        private ProcessImageWriter.CompressedRunBuilder? _openCompressed;
        private long _fileBytes;

        public MergeStatistics Statistics => top.Statistics(_fileBytes);

        public ProcessImage Run(ProcessImage increment, ProcessImageWriter writer)
        {
            _writer = writer;
            var vmas = new List<VmaRecord>(increment.Vmas.Count);
            foreach (VmaRecord vma in increment.Vmas)
            {
                top.Take(vma.End, Emit, Pace);
                CloseRun();
                // In a full image every mapping is complete; the flag would only say it again.
                vmas.Add(vma with { Flags = vma.Flags & ~VmaFlags.Complete, Runs = _runs.ToList() });
                _runs.Clear();
            }
            // Pages above the last mapping belong to mappings that are gone; they are still read,
            // so that every byte of every input is checked.
            top.Take(ulong.MaxValue, null, Pace);

            var files = increment.Files.Select(CopyFile).ToList();
            var ipc = increment.Ipc.Select(o => o.Kind == IpcKind.Shm ? CopySegment(o) : o).ToList();
            var merged = increment with
            {
                Header = new MetaHeader(ImageKind.Full, increment.Header.Vpid, increment.Header.CheckpointSeq),
                Vmas = vmas,
                Files = files,
                Ipc = ipc,
            };
            return writer.Finish(merged);
        }

        /// <summary>Adds pages to the output, continuing the open run when they follow it.</summary>
        private void Emit(ulong addr, ReadOnlySpan<byte> pages)
        {
            if ((_open?.NextAddr ?? _openCompressed?.NextAddr ?? addr) != addr)
            {
                CloseRun();
            }

            if (compress)
            {
                _openCompressed ??= _writer!.BeginCompressedRun(addr);
                _openCompressed.Append(pages);
            }
            else
            {
                _open ??= _writer!.BeginRun(addr);
                _open.Append(pages);
            }
        }

        private void CloseRun()
        {
            if (_open is not null)
            {
                _runs.Add(_open.End());
            }

            if (_openCompressed is not null)
            {
                _runs.AddRange(_openCompressed.End());
            }

            _open = null;
            _openCompressed = null;
        }

        private FileRecord CopyFile(FileRecord file)
        {
            ProcessImageWriter.FileContentsBuilder copy = _writer!.BeginFile();
            newest.Copy(file.PagesOff, file.Size, file.Crc, $"contents of file {ImageLocation.OneLine(file.Path)}", copy.Append, Pace);
            _fileBytes += (long)file.Size;
            return copy.End(file.Dev, file.Inode, file.Path, file.Flags);
        }

        private IpcRecord CopySegment(IpcRecord shm)
        {
            ProcessImageWriter.FileContentsBuilder copy = _writer!.BeginFile();
            newest.Copy(shm.PagesOff, shm.Size, shm.Crc, $"contents of {shm.Describe()}", copy.Append, Pace);
            return copy.EndSegment(shm);
        }

        private void Pace()
        {
            cancellationToken.ThrowIfCancellationRequested();
            pace?.Invoke();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The pages of an image in address order, consumed front to back.</summary>
    private interface IPageSource
    {
        /// <summary>
        /// Consumes the pages below <paramref name="limit"/>, handing them to <paramref name="sink"/>
        /// (or dropping them when it is null), and returns how many there were.
        /// </summary>
        long Take(ulong limit, PageSink? sink, Action pace);
    }

    /// <summary>
    /// An increment applied to the pages below it (the full image, or the chain below, layered),
    /// produced in address order as they are taken: the pairwise merge, without writing it.
    /// </summary>
    private sealed class LayeredSource(IPageSource below, RunSource increment, IReadOnlyList<VmaRecord> vmas) : IPageSource
    {
        private ulong _pos;    // every address below it is done
        private int _vma, _run;
        private long _fromBase, _fromIncrement, _holes, _dropped;

        public MergeStatistics Statistics(long fileBytes) => new(_fromBase, _fromIncrement, _holes, _dropped, fileBytes);

        public long Take(ulong limit, PageSink? sink, Action pace)
        {
            long taken = 0;
            while (_pos < limit)
            {
                var (end, from) = Segment();
                ulong stop = Math.Min(end, limit);
                switch (from)
                {
                    case From.Below:
                        long n = below.Take(stop, sink, pace);
                        _fromBase += n;
                        taken += n;
                        break;
                    case From.Increment:
                        // The increment decides these pages: the ones below are not carried over.
                        _dropped += below.Take(stop, null, pace);
                        n = increment.Take(stop, sink, pace);
                        _fromIncrement += n;
                        taken += n;
                        break;
                    case From.Hole:
                        _dropped += below.Take(stop, null, pace);
                        _holes += (long)((stop - _pos) / ImageLayout.PageSize);
                        break;
                    default:
                        // Outside the increment's mappings (gone), or in a complete one outside its runs.
                        _dropped += below.Take(stop, null, pace);
                        // Nothing: the increment's runs lie inside its mappings. Read to the end, so
                        // that every run of it is checked.
                        increment.Take(stop, null, pace);
                        break;
                }
                _pos = stop;
            }
            return taken;
        }

        private enum From { Nothing, Below, Increment, Hole }

        /// <summary>Where the pages from the current position come from, and up to where.</summary>
        private (ulong End, From From) Segment()
        {
            while (_vma < vmas.Count && vmas[_vma].End <= _pos)
            {
                _vma++;
                _run = 0;
            }
            if (_vma == vmas.Count)
            {
                return (ulong.MaxValue, From.Nothing);
            }

            VmaRecord vma = vmas[_vma];
            if (_pos < vma.Start)
            {
                return (vma.Start, From.Nothing);
            }

            while (_run < vma.Runs.Count && vma.Runs[_run].End <= _pos)
            {
                _run++;
            }
            if (_run < vma.Runs.Count && vma.Runs[_run].Addr <= _pos)
            {
                PageRun run = vma.Runs[_run];
                return (run.End, run.IsHole ? From.Hole : From.Increment);
            }

            // Unchanged since the base, unless the mapping is complete (then none of it was kept).
            ulong gapEnd = _run < vma.Runs.Count ? vma.Runs[_run].Addr : vma.End;
            return (gapEnd, vma.Flags.HasFlag(VmaFlags.Complete) ? From.Nothing : From.Below);
        }
    }

    private delegate void PageSink(ulong addr, ReadOnlySpan<byte> pages);

    /// <summary>
    /// The data runs of one input image in address order, consumed front to back. Every run is
    /// read whole, whether its pages are used or not: a raw run in chunks, its checksum checked
    /// at its end; a compressed run (at most 64 pages) at once, checked and decoded before any
    /// of its pages is used.
    /// </summary>
    private sealed class RunSource : IPageSource, IDisposable
    {
        private readonly SafeFileHandle _file;
        private readonly long _length;
        private readonly List<PageRun> _runs;
        private readonly string _path;
        private readonly byte[] _buffer = ArrayPool<byte>.Shared.Rent(ChunkPages * ImageLayout.PageSize);
        private byte[]? _decoded; // the pages of the current compressed run
        private int _index;
        private ulong _done;  // pages of _runs[_index] consumed
        private uint _crc;

        private RunSource(SafeFileHandle file, string path, ProcessImage image)
        {
            IsCompressed = image.CompressedRunCount > 0;
            _file = file;
            _path = path;
            _length = RandomAccess.GetLength(file);
            _runs = image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole).ToList();
            if ((ulong)_length != image.Header.PagesLen)
            {
                throw Defect($"the file is {_length} bytes but the header says {image.Header.PagesLen} (truncated or overwritten)");
            }
        }

        public bool IsCompressed { get; }

        public static RunSource Open(string pagesPath, ProcessImage image) =>
            ImageLocation.OfFile(pagesPath).Guard(pagesPath, () =>
            {
                SafeFileHandle file = File.OpenHandle(pagesPath, options: FileOptions.SequentialScan);
                try
                {
                    return new RunSource(file, pagesPath, image);
                }
                catch
                {
                    file.Dispose();
                    throw;
                }
            });

        /// <summary>
        /// Consumes the pages below <paramref name="limit"/>, handing them to <paramref name="sink"/>
        /// (or dropping them when it is null), and returns how many there were.
        /// </summary>
        public long Take(ulong limit, PageSink? sink, Action pace)
        {
            long taken = 0;
            while (_index < _runs.Count)
            {
                PageRun run = _runs[_index];
                ulong addr = run.Addr + _done * ImageLayout.PageSize;
                if (addr >= limit)
                {
                    break;
                }

                if (_done == 0)
                {
                    CheckPlacement(run);
                    if (run.IsCompressed)
                    {
                        pace();
                        Decode(run);
                    }
                }
                ulong n = Math.Min(Math.Min(run.NPages - _done, (limit - addr) / ImageLayout.PageSize), ChunkPages);
                Span<byte> pages;
                if (run.IsCompressed)
                {
                    pages = _decoded.AsSpan((int)_done * ImageLayout.PageSize, (int)n * ImageLayout.PageSize);
                }
                else
                {
                    pace();
                    pages = _buffer.AsSpan(0, (int)n * ImageLayout.PageSize);
                    Read(pages, (long)(run.PagesOff + _done * ImageLayout.PageSize));
                    _crc = Crc32C.Compute(pages, _crc);
                }
                sink?.Invoke(addr, pages);
                _done += n;
                taken += (long)n;
                if (_done == run.NPages)
                {
                    if (!run.IsCompressed && _crc != run.Crc)
                    {
                        throw Defect($"{run.Describe()} checksum mismatch (stored 0x{run.Crc:x8}, computed 0x{_crc:x8})");
                    }

                    _index++;
                    _done = 0;
                    _crc = 0;
                }
            }
            return taken;
        }

        /// <summary>Streams contents stored whole (a file's, a segment's), checking their checksum.</summary>
        public void Copy(ulong pagesOff, ulong size, uint storedCrc, string what, PageSinkBytes sink, Action pace)
        {
            string where = $"{what} ({size} bytes at offset {pagesOff})";
            if (pagesOff > (ulong)_length || size > (ulong)_length - pagesOff)
            {
                throw Defect($"{where} reach past the end of the file ({_length} bytes)");
            }

            uint crc = 0;
            long offset = (long)pagesOff;
            for (ulong left = size; left > 0;)
            {
                pace();
                int n = (int)Math.Min(left, (ulong)_buffer.Length);
                Span<byte> chunk = _buffer.AsSpan(0, n);
                Read(chunk, offset);
                crc = Crc32C.Compute(chunk, crc);
                sink(chunk);
                offset += n;
                left -= (ulong)n;
            }
            if (crc != storedCrc)
            {
                throw Defect($"{where} checksum mismatch (stored 0x{storedCrc:x8}, computed 0x{crc:x8})");
            }
        }

        public void Dispose()
        {
            _file.Dispose();
            ArrayPool<byte>.Shared.Return(_buffer);
            if (_decoded is not null)
            {
                ArrayPool<byte>.Shared.Return(_decoded);
            }
        }

        private void CheckPlacement(PageRun run)
        {
            if (run.PagesOff > (ulong)_length || run.StoredLen > (ulong)_length - run.PagesOff)
            {
                throw Defect($"{run.Describe()} reaches past the end of the file ({_length} bytes)");
            }
        }

        /// <summary>
        /// Reads a compressed run's block (the parser bounds it to fit the buffer), checks its
        /// checksum and decodes its pages into <see cref="_decoded"/>.
        /// </summary>
        private void Decode(PageRun run)
        {
            Span<byte> block = _buffer.AsSpan(0, (int)run.StoredLen);
            Read(block, (long)run.PagesOff);
            uint crc = Crc32C.Compute(block);
            if (crc != run.Crc)
            {
                throw Defect($"{run.Describe()} checksum mismatch (stored 0x{run.Crc:x8}, computed 0x{crc:x8})");
            }

            _decoded ??= ArrayPool<byte>.Shared.Rent(Lz4Pages.MaxRunBytes);
            if (Lz4Pages.Decode(block, _decoded.AsSpan(0, (int)run.Bytes)) is { } problem)
            {
                throw Defect($"{run.Describe()}: {problem}");
            }
        }

        private void Read(Span<byte> buffer, long offset)
        {
            try
            {
                ProcessImage.ReadExactly(_file, buffer, offset);
            }
            catch (ImageDefect defect)
            {
                throw ImageLocation.OfFile(_path).From(defect);
            }
            catch (IOException e)
            {
                throw ImageLocation.OfFile(_path).Unreadable(e);
            }
        }

        private ImageFormatException Defect(string reason) => ImageLocation.OfFile(_path).Corrupt(reason);
    }

    private delegate void PageSinkBytes(ReadOnlySpan<byte> bytes);
}
