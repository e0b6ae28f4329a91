using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Understudy.Images;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of every Understudy image: the same value as a chain of
/// SSE4.2 <c>crc32</c> instructions started at ~0 and inverted at the end. Compute("123456789") is 0xE3069283.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78; // bit-reflected: bit 31 is x^0
    private const int Block = 8192;             // bytes per chain and round, as in native/src/common/us_crc32c.c
    private static readonly uint ShiftByOne = ShiftOf(Block);
    private static readonly uint ShiftByTwo = MulMod(ShiftByOne, ShiftByOne);

    /// <summary>
    /// Checksum of <paramref name="data"/>. Pass a previous result as <paramref name="crc"/> to continue it:
    /// Compute(b, Compute(a)) == Compute(a + b).
    /// </summary>
    public static uint Compute(ReadOnlySpan<byte> data, uint crc = 0)
    {
        // BitOperations.Crc32C is the raw instruction (hardware where available): the
        // pre- and post-inversion of the standard CRC are ours to apply.
        uint state = ~crc;
        // One chain waits on each result; three chains over consecutive blocks keep the unit
        // busy. A register r followed by n bytes d is r * x^(8n) + crc0(d), crc0 starting from
        // zero: the linearity that joins them.
        while (BitConverter.IsLittleEndian && data.Length >= 3 * Block)
        {
            ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data[..(3 * Block)]);
            ReadOnlySpan<ulong> first = words[..(Block / 8)], second = words[(Block / 8)..(Block / 4)], third = words[(Block / 4)..];
            uint c0 = state, c1 = 0, c2 = 0;
            for (int i = 0; i < first.Length; i++)
            {
                c0 = BitOperations.Crc32C(c0, first[i]);
                c1 = BitOperations.Crc32C(c1, second[i]);
                c2 = BitOperations.Crc32C(c2, third[i]);
            }
            state = MulMod(ShiftByTwo, c0) ^ MulMod(ShiftByOne, c1) ^ c2;
            data = data[(3 * Block)..];
        }
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

    /// <summary>a * b mod the polynomial, both bit-reflected.</summary>
    private static uint MulMod(uint a, uint b)
    {
        uint product = 0;
        for (uint bit = 1u << 31; bit != 0; bit >>= 1)
        {
            if ((a & bit) != 0)
            {
                product ^= b;
            }
            b = (b >> 1) ^ ((b & 1) != 0 ? Polynomial : 0);
        }
        return product;
    }

    /// <summary>x^(8 * bytes) mod the polynomial.</summary>
    private static uint ShiftOf(long bytes)
    {
        uint result = 1u << 31, power = 1u << 23; // x^0, x^8
        for (; bytes != 0; bytes >>= 1, power = MulMod(power, power))
        {
            if ((bytes & 1) != 0)
            {
                result = MulMod(result, power);
            }
        }
        return result;
    }
}
