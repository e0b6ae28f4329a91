using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>Checks a .pages file against the page runs and file contents of an image.</summary>
internal static class PageVerifier
{
    private const int ChunkSize = 1 << 20;

    public static void Verify(SafeFileHandle file, ProcessImage image)
    {
        long length = RandomAccess.GetLength(file);
        if ((ulong)length != image.Header.PagesLen)
            throw new ImageDefect($"the file is {length} bytes but the header says {image.Header.PagesLen} (truncated or overwritten)");

        // Hole runs have no data. Everything else in file order, so a GiB-sized file is read
        // front to back once.
        var ranges = image.Vmas.SelectMany(v => v.Runs)
            .Where(r => !r.IsHole)
            .Select(r => (Offset: r.PagesOff, Bytes: r.Bytes, r.Crc, Where: $"page run at 0x{r.Addr:x} ({r.NPages} pages at offset {r.PagesOff})"))
            .Concat(image.Files.Select(f => (Offset: f.PagesOff, Bytes: f.Size, f.Crc, Where: $"contents of file {ImageLocation.OneLine(f.Path)} ({f.Size} bytes at offset {f.PagesOff})")))
            .OrderBy(r => r.Offset);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            foreach (var range in ranges)
            {
                if (range.Offset % ImageLayout.PageSize != 0)
                    throw new ImageDefect($"{range.Where} is not {ImageLayout.PageSize}-aligned in the file");
                if (range.Offset > (ulong)length || range.Bytes > (ulong)length - range.Offset)
                    throw new ImageDefect($"{range.Where} reaches past the end of the file ({length} bytes)");

                uint crc = Checksum(file, (long)range.Offset, range.Bytes, chunk);
                if (crc != range.Crc)
                    throw new ImageDefect($"{range.Where} checksum mismatch (stored 0x{range.Crc:x8}, computed 0x{crc:x8})");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private static uint Checksum(SafeFileHandle file, long offset, ulong bytes, byte[] chunk)
    {
        uint crc = 0;
        for (ulong left = bytes; left > 0;)
        {
            int n = (int)Math.Min(left, (ulong)ChunkSize);
            ProcessImage.ReadExactly(file, chunk.AsSpan(0, n), offset);
            crc = Crc32C.Compute(chunk.AsSpan(0, n), crc);
            offset += n;
            left -= (ulong)n;
        }
        return crc;
    }
}
