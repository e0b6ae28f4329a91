using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>
/// Reads the pages of one run back from a .pages file, whether stored raw or compressed, for
/// tools and tests that look at page contents. The run's stored bytes are checked against its
/// CRC-32C before they are used.
/// </summary>
public static class PageRunReader
{
    /// <summary>The <see cref="PageRun.NPages"/> × 4096 bytes of a data run.</summary>
    /// <exception cref="ArgumentException">The run is a hole: it has no data.</exception>
    /// <exception cref="ImageFormatException">The file is missing or unreadable, or the run's data is not there or does not match.</exception>
    public static byte[] ReadPages(string pagesPath, PageRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.IsHole)
        {
            throw new ArgumentException($"the run at 0x{run.Addr:x} is a hole and has no data", nameof(run));
        }

        return ImageLocation.OfFile(pagesPath).Guard(pagesPath, () =>
        {
            using SafeFileHandle file = File.OpenHandle(pagesPath);
            long length = RandomAccess.GetLength(file);
            string where = run.Describe();
            if (run.PagesOff > (ulong)length || run.StoredLen > (ulong)length - run.PagesOff)
            {
                throw new ImageDefect($"{where} reaches past the end of the file ({length} bytes)");
            }

            if (run.IsCompressed ? run.NPages > ImageLayout.Lz4RunPages : run.StoredLen != run.Bytes)
            {
                throw new ImageDefect($"{where} has sizes this format does not allow");
            }

            var stored = new byte[run.StoredLen];
            ProcessImage.ReadExactly(file, stored, (long)run.PagesOff);
            uint crc = Crc32C.Compute(stored);
            if (crc != run.Crc)
            {
                throw new ImageDefect($"{where} checksum mismatch (stored 0x{run.Crc:x8}, computed 0x{crc:x8})");
            }

            if (!run.IsCompressed)
            {
                return stored;
            }

            var pages = new byte[run.Bytes];
            if (Lz4Pages.Decode(stored, pages) is { } problem)
            {
                throw new ImageDefect($"{where}: {problem}");
            }

            return pages;
        });
    }
}
