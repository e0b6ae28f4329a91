using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>Checks a .pages file against the page runs and file contents of an image.</summary>
internal static class PageVerifier
{
    private const int ChunkSize = 1 << 20;

    /// <summary>
    /// Bytes of .pages one run or one file's contents claims: <paramref name="Length"/> bytes at
    /// <paramref name="Offset"/> with checksum <paramref name="Crc"/>, starting at a multiple of
    /// <paramref name="Alignment"/>. A compressed run also has to decode, to exactly
    /// <paramref name="DecodedLength"/> bytes (0 for data stored as it is).
    /// </summary>
    private sealed record Region(ulong Offset, ulong Length, uint Crc, int Alignment, ulong DecodedLength, string Where);

    public static void Verify(SafeFileHandle file, ProcessImage image)
    {
        long length = RandomAccess.GetLength(file);
        if ((ulong)length != image.Header.PagesLen)
        {
            throw new ImageDefect($"the file is {length} bytes but the header says {image.Header.PagesLen} (truncated or overwritten)");
        }

        // Hole runs have no data. Everything else in file order, so a GiB-sized file is read
        // front to back once.
        var regions = image.Vmas.SelectMany(v => v.Runs)
            .Where(r => !r.IsHole)
            .Select(RegionOf)
            .Concat(image.Files.Select(f => new Region(f.PagesOff, f.Size, f.Crc, ImageLayout.PageSize, 0,
                $"contents of file {ImageLocation.OneLine(f.Path)} ({f.Size} bytes at offset {f.PagesOff})")))
            .Concat(image.Ipc.Where(o => o.Kind == IpcKind.Shm).Select(o => new Region(o.PagesOff, o.Size, o.Crc, ImageLayout.PageSize, 0,
                $"contents of {o.Describe()} ({o.Size} bytes at offset {o.PagesOff})")))
            .OrderBy(r => r.Offset);
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        byte[]? decoded = null;
        try
        {
            foreach (Region region in regions)
            {
                if (region.Offset % (ulong)region.Alignment != 0)
                {
                    throw new ImageDefect($"{region.Where} is not {region.Alignment}-aligned in the file");
                }

                if (region.Offset > (ulong)length || region.Length > (ulong)length - region.Offset)
                {
                    throw new ImageDefect($"{region.Where} reaches past the end of the file ({length} bytes)");
                }

                if (region.DecodedLength == 0)
                {
                    uint crc = Checksum(file, (long)region.Offset, region.Length, chunk);
                    CheckCrc(region, crc);
                    continue;
                }
                Span<byte> block = chunk.AsSpan(0, (int)region.Length);
                ProcessImage.ReadExactly(file, block, (long)region.Offset);
                CheckCrc(region, Crc32C.Compute(block));
                decoded ??= ArrayPool<byte>.Shared.Rent(Lz4Pages.MaxRunBytes);
                if (Lz4Pages.Decode(block, decoded.AsSpan(0, (int)region.DecodedLength)) is { } problem)
                {
                    throw new ImageDefect($"{region.Where}: {problem}");
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            if (decoded is not null)
            {
                ArrayPool<byte>.Shared.Return(decoded);
            }
        }
    }

    /// <summary>
    /// The bytes a data run claims. The parser has checked the run's sizes against each other; an
    /// image put together in memory may not have been, and a compressed run must fit the buffers.
    /// </summary>
    private static Region RegionOf(PageRun run)
    {
        string where = run.Describe();
        if (!run.IsCompressed)
        {
            if (run.NPages > ulong.MaxValue / ImageLayout.PageSize || run.StoredLen != run.Bytes)
            {
                throw new ImageDefect($"{where} has stored_len {run.StoredLen}, but a raw run stores its {run.NPages} pages as they are");
            }

            return new Region(run.PagesOff, run.StoredLen, run.Crc, ImageLayout.PageSize, 0, where);
        }
        if (run.NPages > ImageLayout.Lz4RunPages || run.StoredLen == 0 || run.StoredLen > ImageLayout.Lz4Bound(run.Bytes))
        {
            throw new ImageDefect(
                $"{where} is not a compressed run this format allows: at most {ImageLayout.Lz4RunPages} pages, as an LZ4 block of at least 1 byte and at most the LZ4 bound of its size");
        }
        return new Region(run.PagesOff, run.StoredLen, run.Crc, ImageLayout.Lz4RunAlignment, run.Bytes, where);
    }

    private static void CheckCrc(Region region, uint crc)
    {
        if (crc != region.Crc)
        {
            throw new ImageDefect($"{region.Where} checksum mismatch (stored 0x{region.Crc:x8}, computed 0x{crc:x8})");
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
