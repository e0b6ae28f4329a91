using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Understudy.Images;

/// <summary>
/// Linux paths and names are bytes, not text. Decoding keeps valid UTF-8 as text and turns every
/// other byte b into the lone surrogate U+DC00+b (Python's "surrogateescape"), and encoding
/// undoes that, so a path that is not UTF-8 still round-trips bit for bit through an image
/// rewrite such as a merge.
/// </summary>
public static class PosixString
{
    private const char EscapeBase = '\uDC00';
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes))
        {
            return StrictUtf8.GetString(bytes);
        }

        var text = new StringBuilder(bytes.Length);
        char[] chunk = ArrayPool<char>.Shared.Rent(Math.Min(bytes.Length, 4096));
        try
        {
            while (!bytes.IsEmpty)
            {
                OperationStatus status = Utf8.ToUtf16(bytes, chunk, out int read, out int written, replaceInvalidSequences: false);
                text.Append(chunk, 0, written);
                bytes = bytes[read..];
                if (status == OperationStatus.InvalidData)
                {
                    // ASCII is always valid, so an invalid byte is >= 0x80 and escapes to U+DC80..U+DCFF.
                    text.Append((char)(EscapeBase + bytes[0]));
                    bytes = bytes[1..];
                }
            }
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chunk);
        }
        return text.ToString();
    }

    /// <exception cref="ArgumentException">The text has a lone surrogate that no decoding produced.</exception>
    public static byte[] Encode(string text)
    {
        var bytes = new List<byte>(text.Length);
        int runStart = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            if (text[i] is >= '\uDC80' and <= '\uDCFF')
            {
                bytes.AddRange(StrictUtf8.GetBytes(text, runStart, i - runStart));
                bytes.Add((byte)(text[i] - EscapeBase));
                runStart = i + 1;
            }
        }
        if (runStart == 0)
        {
            return StrictUtf8.GetBytes(text);
        }

        bytes.AddRange(StrictUtf8.GetBytes(text, runStart, text.Length - runStart));
        return [.. bytes];
    }
}
