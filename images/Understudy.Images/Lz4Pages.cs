using K4os.Compression.LZ4;

namespace Understudy.Images;

/// <summary>
/// The LZ4 blocks of compressed page runs (US_RUN_F_LZ4): the plain LZ4 block format, no frame,
/// the same bytes the interceptor's writer and the restorer handle with their own codec
/// (native/src/common/us_lz4.c).
/// </summary>
internal static class Lz4Pages
{
    /// <summary>The largest decoded run: <see cref="ImageLayout.Lz4RunPages"/> pages.</summary>
    public const int MaxRunBytes = ImageLayout.Lz4RunPages * ImageLayout.PageSize;

    /// <summary>The largest block of a run, <see cref="ImageLayout.Lz4Bound"/> of <see cref="MaxRunBytes"/>.</summary>
    public static readonly int MaxBlockBytes = (int)ImageLayout.Lz4Bound(MaxRunBytes);

    /// <summary>
    /// Compresses <paramref name="pages"/> (at most <see cref="MaxRunBytes"/>) into
    /// <paramref name="block"/> (at least <see cref="MaxBlockBytes"/>) with the fast level, and
    /// returns the block's length, or 0 when the block would not be smaller than the pages: such a
    /// chunk is worth more stored raw, where a restorer can map it.
    /// </summary>
    public static int Compress(ReadOnlySpan<byte> pages, Span<byte> block)
    {
        int length = LZ4Codec.Encode(pages, block, LZ4Level.L00_FAST);
        return length > 0 && length < pages.Length ? length : 0;
    }

    /// <summary>
    /// Decodes <paramref name="block"/> into <paramref name="pages"/>, which it must fill exactly.
    /// Returns null, or what is wrong with the block (for an error message).
    /// </summary>
    public static string? Decode(ReadOnlySpan<byte> block, Span<byte> pages)
    {
        // K4os ports LZ4_decompress_safe: any input, however malformed, gives a negative result
        // rather than a read or write outside the two spans.
        int decoded = LZ4Codec.Decode(block, pages);
        if (decoded < 0)
        {
            return $"its LZ4 block is malformed (it does not decode to {pages.Length} bytes or fewer)";
        }

        if (decoded != pages.Length)
        {
            return $"its LZ4 block decodes to {decoded} bytes, not the {pages.Length} of its pages";
        }

        return null;
    }
}
