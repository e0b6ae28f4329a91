using System.Text;

namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>
/// Tokens of both line protocols are separated by spaces, so a token that could contain a
/// space, newline or '%' travels percent-encoded (docs/protocol.md). Encoding is the identity
/// for ordinary names, so encoding every string token is always safe. An empty string is
/// written "%00" so that it still takes its place; decoding drops NUL bytes (as the native
/// side's us_put_token/us_next_token do).
/// </summary>
internal static class TokenCodec
{
    private const string EmptyToken = "%00";

    public static string Encode(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return EmptyToken;
        }
        if (!NeedsEncoding(value))
        {
            return value;
        }
        // Work on UTF-8 bytes: non-ASCII text passes through unchanged, only the separators and
        // '%' itself are escaped.
        var encoded = new List<byte>(value.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (MustEscape(b))
            {
                encoded.Add((byte)'%');
                encoded.Add(HexDigit(b >> 4));
                encoded.Add(HexDigit(b & 0xf));
            }
            else
            {
                encoded.Add(b);
            }
        }
        return Encoding.UTF8.GetString(encoded.ToArray());
    }

    public static string Decode(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (!token.Contains('%'))
        {
            return token;
        }
        var source = Encoding.UTF8.GetBytes(token);
        var bytes = new List<byte>(source.Length);
        for (var i = 0; i < source.Length; i++)
        {
            if (source[i] == '%' && i + 2 < source.Length && IsHex(source[i + 1]) && IsHex(source[i + 2]))
            {
                var decoded = (byte)(HexValue(source[i + 1]) << 4 | HexValue(source[i + 2]));
                if (decoded != 0)
                {
                    bytes.Add(decoded);
                }
                i += 2;
            }
            else
            {
                // A '%' not followed by two hex digits is kept as it is rather than rejected.
                bytes.Add(source[i]);
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Splits a line into its raw (still encoded) tokens.</summary>
    public static string[] Split(string line) =>
        line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static bool NeedsEncoding(string value)
    {
        foreach (var c in value)
        {
            if (c == '%' || c <= ' ' || c == '\x7f')
            {
                return true;
            }
        }
        return false;
    }

    private static bool MustEscape(byte b) => b == '%' || b <= ' ' || b == 0x7f;

    private static byte HexDigit(int value) => (byte)"0123456789ABCDEF"[value];

    private static bool IsHex(byte b) => b is >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F';

    private static int HexValue(byte b) => b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10;
}
