using System.Buffers.Binary;
using System.Numerics;

namespace Understudy.Images;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of every Understudy image: the same value as a chain of
/// SSE4.2 <c>crc32</c> instructions started at ~0 and inverted at the end. Compute("123456789") is 0xE3069283.
/// </summary>
public static class Crc32C
{
    /// <summary>
    /// Checksum of <paramref name="data"/>. Pass a previous result as <paramref name="crc"/> to continue it:
    /// Compute(b, Compute(a)) == Compute(a + b).
    /// </summary>
    public static uint Compute(ReadOnlySpan<byte> data, uint crc = 0)
    {
        // BitOperations.Crc32C is the raw instruction (hardware where available): the
        // pre- and post-inversion of the standard CRC are ours to apply.
        uint state = ~crc;
        while (data.Length >= sizeof(ulong))
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }
        foreach (byte b in data)
        {
            state = BitOperations.Crc32C(state, b);
        }

        return ~state;
    }
}
