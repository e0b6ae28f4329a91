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

/// <summary>
/// Applies an incremental process image to its base and writes the result as a full image
/// (docs/image-format.md, "Merging an incremental image"). The output's mappings are the
/// increment's; a page of a mapping comes from the increment if the increment has a run there
/// (none for a hole), otherwise, unless the mapping is complete, from the base if the base has
/// it. Everything else (process, threads, descriptors, signal actions, limits, file contents)
/// is the increment's.
/// <para>
/// Both inputs are streamed through bounded memory, each read once in address order, and every
/// input run's checksum is checked as it is read: a corrupt input is refused with
/// <see cref="ImageFormatException"/>, never merged. The output is a function of the inputs
/// only: runs coalesced in address order, pages written front to back 4096-aligned, file
/// contents after them, so the same inputs always give the same bytes.
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
    /// <exception cref="ImageFormatException">An input is missing, corrupt, or does not belong to the other.</exception>
    /// <exception cref="IOException">Writing the output failed (the partial output is removed).</exception>
    /// <exception cref="OperationCanceledException">Cancelled (the partial output is removed).</exception>
    public static MergeResult Merge(
        ImageFiles baseImage, ImageFiles increment, ImageFiles output,
        Action? pace = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        ArgumentNullException.ThrowIfNull(increment);
        ArgumentNullException.ThrowIfNull(output);
        string[] inputs = [Path.GetFullPath(baseImage.Meta), Path.GetFullPath(baseImage.Pages), Path.GetFullPath(increment.Meta), Path.GetFullPath(increment.Pages)];
        if (inputs.Contains(Path.GetFullPath(output.Meta)) || inputs.Contains(Path.GetFullPath(output.Pages)))
            throw new ArgumentException("a merge cannot write over one of its inputs", nameof(output));

        ProcessImage @base = ProcessImage.ReadMeta(baseImage.Meta);
        ProcessImage inc = ProcessImage.ReadMeta(increment.Meta);
        CheckPair(@base, baseImage, inc, increment);

        using var baseSource = RunSource.Open(baseImage.Pages, @base);
        using var incSource = RunSource.Open(increment.Pages, inc);
        var merge = new MergeRun(baseSource, incSource, pace, cancellationToken);
        try
        {
            using var writer = new ProcessImageWriter(output.Meta, output.Pages);
            ProcessImage written = merge.Run(inc, writer);
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

    private static void CheckPair(ProcessImage @base, ImageFiles baseFiles, ProcessImage inc, ImageFiles incFiles)
    {
        ImageLocation incLocation = ImageLocation.OfFile(incFiles.Meta);
        if (inc.Header.Kind != ImageKind.Incremental)
            throw incLocation.Unmergeable("it is a full image already; only an incremental image is merged");
        if (@base.Header.Kind != ImageKind.Full)
            throw ImageLocation.OfFile(baseFiles.Meta).Unmergeable(
                $"it is itself incremental (on checkpoint {@base.Header.BaseSeq}); merge it into its own base first");
        if (inc.Header.Vpid != @base.Header.Vpid)
            throw incLocation.Unmergeable($"it is of vpid {inc.Header.Vpid} but the base image is of vpid {@base.Header.Vpid}");
        if (inc.Header.BaseSeq != @base.Header.CheckpointSeq)
            throw incLocation.Unmergeable(
                $"it applies to checkpoint {inc.Header.BaseSeq} but the base image belongs to checkpoint {@base.Header.CheckpointSeq}");
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

    /// <summary>One merge's state: both sources, the output's open run, and the counts.</summary>
    private sealed class MergeRun(RunSource @base, RunSource inc, Action? pace, CancellationToken cancellationToken)
    {
        private readonly List<PageRun> _runs = [];
        private ProcessImageWriter? _writer;
        private ProcessImageWriter.PageRunBuilder? _open;
        private long _fromBase, _fromIncrement, _holes, _dropped, _fileBytes;

        public MergeStatistics Statistics => new(_fromBase, _fromIncrement, _holes, _dropped, _fileBytes);

        public ProcessImage Run(ProcessImage increment, ProcessImageWriter writer)
        {
            _writer = writer;
            var vmas = new List<VmaRecord>(increment.Vmas.Count);
            foreach (VmaRecord vma in increment.Vmas)
                vmas.Add(MergeVma(vma));
            // Base pages above the last mapping belong to mappings that are gone; they are still
            // read, so that every byte of the base is checked.
            _dropped += @base.Take(ulong.MaxValue, null, Pace);
            inc.Take(ulong.MaxValue, null, Pace); // nothing: the increment's runs lie inside its mappings

            var files = increment.Files.Select(CopyFile).ToList();
            var merged = increment with
            {
                Header = new MetaHeader(ImageKind.Full, increment.Header.Vpid, increment.Header.CheckpointSeq),
                Vmas = vmas,
                Files = files,
            };
            return writer.Finish(merged);
        }

        private VmaRecord MergeVma(VmaRecord vma)
        {
            // Base pages below this mapping were in mappings that are gone.
            _dropped += @base.Take(vma.Start, null, Pace);
            bool complete = vma.Flags.HasFlag(VmaFlags.Complete);
            foreach (PageRun run in vma.Runs)
            {
                Gap(run.Addr, complete);
                // The increment decides these pages: its data, or nothing for a hole.
                _dropped += @base.Take(run.End, null, Pace);
                if (run.IsHole)
                {
                    CloseRun();
                    _holes += (long)run.NPages;
                }
                else
                {
                    _fromIncrement += inc.Take(run.End, Emit, Pace);
                }
            }
            Gap(vma.End, complete);
            CloseRun();

            var runs = _runs.ToList();
            _runs.Clear();
            // In a full image every mapping is complete; the flag would only say it again.
            return vma with { Flags = vma.Flags & ~VmaFlags.Complete, Runs = runs };
        }

        /// <summary>Pages up to <paramref name="end"/> that the increment has no run for: unchanged since the base.</summary>
        private void Gap(ulong end, bool complete)
        {
            if (complete)
                _dropped += @base.Take(end, null, Pace);
            else
                _fromBase += @base.Take(end, Emit, Pace);
        }

        /// <summary>Adds pages to the output, continuing the open run when they follow it.</summary>
        private void Emit(ulong addr, ReadOnlySpan<byte> pages)
        {
            if (_open is not null && _open.NextAddr != addr)
                CloseRun();
            _open ??= _writer!.BeginRun(addr);
            _open.Append(pages);
        }

        private void CloseRun()
        {
            if (_open is null)
                return;
            _runs.Add(_open.End());
            _open = null;
        }

        private FileRecord CopyFile(FileRecord file)
        {
            ProcessImageWriter.FileContentsBuilder copy = _writer!.BeginFile();
            inc.Copy(file, copy.Append, Pace);
            _fileBytes += (long)file.Size;
            return copy.End(file.Dev, file.Inode, file.Path);
        }

        private void Pace()
        {
            cancellationToken.ThrowIfCancellationRequested();
            pace?.Invoke();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    private delegate void PageSink(ulong addr, ReadOnlySpan<byte> pages);

    /// <summary>
    /// The data runs of one input image in address order, consumed front to back. Every run is
    /// read whole, whether its pages are used or not, and its checksum checked at its end.
    /// </summary>
    private sealed class RunSource : IDisposable
    {
        private readonly SafeFileHandle _file;
        private readonly long _length;
        private readonly List<PageRun> _runs;
        private readonly string _path;
        private readonly byte[] _buffer = ArrayPool<byte>.Shared.Rent(ChunkPages * ImageLayout.PageSize);
        private int _index;
        private ulong _done;  // pages of _runs[_index] consumed
        private uint _crc;

        private RunSource(SafeFileHandle file, string path, ProcessImage image)
        {
            _file = file;
            _path = path;
            _length = RandomAccess.GetLength(file);
            _runs = image.Vmas.SelectMany(v => v.Runs).Where(r => !r.IsHole).ToList();
            if ((ulong)_length != image.Header.PagesLen)
                throw Defect($"the file is {_length} bytes but the header says {image.Header.PagesLen} (truncated or overwritten)");
        }

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
                    break;
                if (_done == 0)
                    CheckPlacement(run);
                ulong n = Math.Min(Math.Min(run.NPages - _done, (limit - addr) / ImageLayout.PageSize), ChunkPages);
                pace();
                Span<byte> pages = _buffer.AsSpan(0, (int)n * ImageLayout.PageSize);
                Read(pages, (long)(run.PagesOff + _done * ImageLayout.PageSize));
                _crc = Crc32C.Compute(pages, _crc);
                sink?.Invoke(addr, pages);
                _done += n;
                taken += (long)n;
                if (_done == run.NPages)
                {
                    if (_crc != run.Crc)
                        throw Defect($"page run at 0x{run.Addr:x} ({run.NPages} pages at offset {run.PagesOff}) checksum mismatch (stored 0x{run.Crc:x8}, computed 0x{_crc:x8})");
                    _index++;
                    _done = 0;
                    _crc = 0;
                }
            }
            return taken;
        }

        /// <summary>Streams a file's contents, checking their checksum.</summary>
        public void Copy(FileRecord file, PageSinkBytes sink, Action pace)
        {
            string where = $"contents of file {ImageLocation.OneLine(file.Path)} ({file.Size} bytes at offset {file.PagesOff})";
            if (file.PagesOff > (ulong)_length || file.Size > (ulong)_length - file.PagesOff)
                throw Defect($"{where} reach past the end of the file ({_length} bytes)");
            uint crc = 0;
            long offset = (long)file.PagesOff;
            for (ulong left = file.Size; left > 0;)
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
            if (crc != file.Crc)
                throw Defect($"{where} checksum mismatch (stored 0x{file.Crc:x8}, computed 0x{crc:x8})");
        }

        public void Dispose()
        {
            _file.Dispose();
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        private void CheckPlacement(PageRun run)
        {
            if (run.PagesOff > (ulong)_length || run.NPages > ((ulong)_length - run.PagesOff) / ImageLayout.PageSize)
                throw Defect($"page run at 0x{run.Addr:x} ({run.NPages} pages at offset {run.PagesOff}) reaches past the end of the file ({_length} bytes)");
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
