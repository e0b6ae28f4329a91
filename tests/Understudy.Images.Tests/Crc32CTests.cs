using System.Text;

namespace Understudy.Images.Tests;

public class Crc32CTests
{
    // RFC 3720 appendix B.4 and the classic check value.
    public static TheoryData<byte[], uint> KnownVectors => new()
    {
        { Encoding.ASCII.GetBytes("123456789"), 0xE3069283 },
        { [], 0x00000000 },
        { new byte[32], 0x8A9136AA },
        { Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43 },
        { Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 0x46DD794E },
        { Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray(), 0x113FDB5C },
    };

    [Theory]
    [MemberData(nameof(KnownVectors))]
    public void Matches_known_vectors(byte[] data, uint expected) => Assert.Equal(expected, Crc32C.Compute(data));

    [Fact]
    public void Continuing_from_a_previous_result_equals_one_pass_at_every_split()
    {
        var data = new byte[100];
        new Random(7).NextBytes(data);
        uint whole = Crc32C.Compute(data);
        for (int split = 0; split <= data.Length; split++)
        {
            Assert.Equal(whole, Crc32C.Compute(data.AsSpan(split), Crc32C.Compute(data.AsSpan(0, split))));
        }
    }

    [Fact]
    public void Agrees_with_the_bitwise_definition_for_every_length_and_alignment()
    {
        var data = new byte[300];
        new Random(11).NextBytes(data);
        for (int start = 0; start < 8; start++)
        {
            for (int length = 0; start + length <= data.Length; length += 7)
            {
                ReadOnlySpan<byte> slice = data.AsSpan(start, length);
                Assert.Equal(Bitwise(slice), Crc32C.Compute(slice));
            }
        }
    }

    // Long inputs run three chains at once and join them: lengths around and past the
    // 3 x 8 KiB round, at every alignment, and continued from a previous result.
    [Theory]
    [InlineData(3 * 8192 - 1)]
    [InlineData(3 * 8192)]
    [InlineData(3 * 8192 + 5)]
    [InlineData(6 * 8192 + 4099)]
    [InlineData(10 * 8192)]
    public void Agrees_with_the_bitwise_definition_over_three_chain_rounds(int length)
    {
        var data = new byte[length + 8];
        new Random(length).NextBytes(data);
        for (int start = 0; start < 8; start += 3)
        {
            ReadOnlySpan<byte> slice = data.AsSpan(start, length);
            Assert.Equal(Bitwise(slice), Crc32C.Compute(slice));
            Assert.Equal(Bitwise(slice), Crc32C.Compute(slice[1000..], Crc32C.Compute(slice[..1000])));
        }
    }

    private static uint Bitwise(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc >> 1) ^ (0x82F63B78u & (uint)-(int)(crc & 1));
            }
        }
        return ~crc;
    }
}
