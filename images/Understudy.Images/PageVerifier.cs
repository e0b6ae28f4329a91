using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>Checks a .pages file against the page runs of an image.</summary>
internal static class PageVerifier
{
    private const int ChunkSize = 1 << 20;

    public static void Verify(SafeFileHandle file, ProcessImage image)
    {
        long length = RandomAccess.GetLength(file);
        if ((ulong)length != image.Header.PagesLen)
            throw new ImageDefect($"the file is {length} bytes but the header says {image.Header.PagesLen} (truncated or overwritten)");

        // In file order, so a GiB-sized file is read front to back once.
        var runs = image.Vmas.SelectMany(v => v.Runs).OrderBy(r => r.PagesOff);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            foreach (PageRun run in runs)
            {
                string where = $"page run at 0x{run.Addr:x} ({run.NPages} pages at offset {run.PagesOff})";
                if (run.PagesOff % ImageLayout.PageSize != 0)
                    throw new ImageDefect($"{where} is not {ImageLayout.PageSize}-aligned in the file");
                if (run.PagesOff > (ulong)length || run.NPages > ((ulong)length - run.PagesOff) / ImageLayout.PageSize)
                    throw new ImageDefect($"{where} reaches past the end of the file ({length} bytes)");

                uint crc = 0;
                long offset = (long)run.PagesOff;
                for (ulong left = run.Bytes; left > 0;)
                {
                    int n = (int)Math.Min(left, (ulong)ChunkSize);
                    ProcessImage.ReadExactly(file, chunk.AsSpan(0, n), offset);
                    crc = Crc32C.Compute(chunk.AsSpan(0, n), crc);
                    offset += n;
                    left -= (ulong)n;
                }
                if (crc != run.Crc)
                    throw new ImageDefect($"{where} checksum mismatch (stored 0x{run.Crc:x8}, computed 0x{crc:x8})");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}
