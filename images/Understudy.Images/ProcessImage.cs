using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>
/// One process of one checkpoint, decoded from its .meta file: the header and every record.
/// The .pages file is not read here; <see cref="VerifyPages"/> checks it against the runs.
/// </summary>
/// <param name="Sigactions">The entries of the image's single SIGACT record.</param>
public sealed record ProcessImage(
    MetaHeader Header,
    ProcRecord Proc,
    IReadOnlyList<VmaRecord> Vmas,
    IReadOnlyList<ThreadRecord> Threads,
    IReadOnlyList<FdRecord> Fds,
    IReadOnlyList<SigactionEntry> Sigactions,
    MiscRecord Misc)
{
    /// <summary>
    /// The FILE records: contents of regular files captured with the checkpoint. Outside the
    /// positional parameters because most images have none.
    /// </summary>
    public IReadOnlyList<FileRecord> Files { get; init; } = [];

    /// <summary>The TIMER records: the process's POSIX timers.</summary>
    public IReadOnlyList<TimerRecord> Timers { get; init; } = [];

    /// <summary>
    /// The IPC records: the objects of the group's IPC namespace, in the image of the one member
    /// that captured them; empty in every other image.
    /// </summary>
    public IReadOnlyList<IpcRecord> Ipc { get; init; } = [];

    /// <summary>The MADVICE record's ranges: memory attributes a restore sets again, ascending.</summary>
    public IReadOnlyList<MemoryAdvice> MemoryAdvice { get; init; } = [];

    /// <summary>Reads and fully validates a .meta file.</summary>
    /// <exception cref="ImageFormatException">The file is missing, unreadable, corrupt or of another version.</exception>
    public static ProcessImage ReadMeta(string metaPath)
    {
        ImageLocation location = ImageLocation.OfFile(metaPath);
        return location.Guard(metaPath, () =>
        {
            using SafeFileHandle file = File.OpenHandle(metaPath);
            long length = RandomAccess.GetLength(file);
            // The header alone decides whether the rest is worth reading: a huge or foreign file
            // is refused after 64 bytes.
            var start = new byte[(int)Math.Min(length, ImageLayout.HeaderSize)];
            ReadExactly(file, start, 0);
            MetaParser.ParseHeader(start, length);
            var all = new byte[length];
            ReadExactly(file, all, 0);
            return MetaParser.Parse(all);
        });
    }

    /// <summary>Decodes and fully validates .meta bytes held in memory (received from a peer, for example).</summary>
    /// <exception cref="ImageFormatException">The bytes are corrupt or of another version.</exception>
    public static ProcessImage Parse(ReadOnlySpan<byte> meta, string description = "image")
    {
        try
        {
            return MetaParser.Parse(meta);
        }
        catch (ImageDefect defect)
        {
            throw new ImageLocation(description, ImageLocation.GenericAdvice).From(defect);
        }
    }

    /// <summary>Pages of data in the .pages file; hole runs carry none and are not counted.</summary>
    public long PageCount => Vmas.Sum(v => v.Runs.Where(r => !r.IsHole).Sum(r => (long)r.NPages));

    /// <summary>Runs with data; hole runs are counted by <see cref="HoleRunCount"/>.</summary>
    public int RunCount => Vmas.Sum(v => v.Runs.Count(r => !r.IsHole));

    /// <summary>Runs stored as LZ4 blocks (a part of <see cref="RunCount"/>).</summary>
    public int CompressedRunCount => Vmas.Sum(v => v.Runs.Count(r => r.IsCompressed));

    /// <summary>
    /// Bytes the data runs occupy in the .pages file, alignment padding excluded: less than
    /// <see cref="PageCount"/> × 4096 when runs are compressed.
    /// </summary>
    public long StoredPageBytes => Vmas.Sum(v => v.Runs.Sum(r => (long)r.StoredLen));

    public int HoleRunCount => Vmas.Sum(v => v.Runs.Count(r => r.IsHole));

    /// <summary>Pages that hole runs say are no longer in memory.</summary>
    public long HolePageCount => Vmas.Sum(v => v.Runs.Where(r => r.IsHole).Sum(r => (long)r.NPages));

    /// <summary>Bytes of file contents (FILE records) in the .pages file, padding excluded.</summary>
    public long FileBytes => Files.Sum(f => (long)f.Size);

    /// <summary>Bytes of SysV shared memory contents (IPC records) in the .pages file, padding excluded.</summary>
    public long SharedMemoryBytes => Ipc.Where(o => o.Kind == IpcKind.Shm).Sum(o => (long)o.Size);

    /// <summary>
    /// Checks the .pages file against this image: its size is exactly Header.PagesLen; every
    /// raw page run and every file's contents (FILE records) are 4096-aligned, every compressed
    /// run 8-aligned; each lies inside the file and its stored bytes match their CRC-32C; and
    /// every compressed run decodes to exactly its pages. Reads the file once, in order, in
    /// bounded memory.
    /// </summary>
    /// <exception cref="ImageFormatException">The file is missing, unreadable or does not match.</exception>
    public void VerifyPages(string pagesPath)
    {
        ImageLocation location = ImageLocation.OfFile(pagesPath);
        location.Guard(pagesPath, () =>
        {
            using SafeFileHandle file = File.OpenHandle(pagesPath, options: FileOptions.SequentialScan);
            PageVerifier.Verify(file, this);
            return true;
        });
    }

    internal static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        while (!buffer.IsEmpty)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n == 0)
            {
                throw new ImageDefect($"the file ended at byte {offset} while being read (it changed underneath)");
            }

            buffer = buffer[n..];
            offset += n;
        }
    }
}
