using System.Buffers.Binary;
using System.Diagnostics;
using Xunit.Abstractions;
using static Understudy.Images.Tests.TestImages;

namespace Understudy.Images.Tests;

/// <summary>
/// Seeded random damage to valid images: the reader must answer with an image or an
/// ImageFormatException, never anything else. Most mutations are resealed (checksums
/// recomputed) so that they reach the structural checks behind the checksums.
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20261125;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(4);

    [Fact]
    public void Mutated_meta_never_escapes_as_another_exception()
    {
        byte[] rich;
        using (var dir = new TempDir())
        {
            WriteRich(dir.Path);
            rich = File.ReadAllBytes(dir.File("2.meta"));
        }
        // The incremental vector has hole runs, a complete mapping and a FILE record.
        byte[] incremental = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector-inc.meta"));
        // The full vector has a TCP connection's state and queues and a seqpacket socket's records.
        byte[] vector = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector.meta"));
        byte[][] seeds = [rich, Minimal(), incremental, vector];
        var random = new Random(Seed);
        var clock = Stopwatch.StartNew();
        int accepted = 0, refusedBehindChecksums = 0, iterations = 0;

        for (; iterations < 30_000 && clock.Elapsed < Budget; iterations++)
        {
            byte[] original = seeds[iterations % seeds.Length];
            byte[] mutant = Mutate(original, random);
            if (random.Next(10) < 8)
            {
                mutant = Reseal(mutant);
            }

            try
            {
                ProcessImage image = ProcessImage.Parse(mutant);
                accepted++;
                // Whatever the reader accepts, the writer can write again.
                ProcessImage.Parse(ProcessImageWriter.EncodeMeta(image));
            }
            catch (ImageFormatException e)
            {
                AssertOneLine(e.Message);
                if (!e.Message.Contains("checksum"))
                {
                    refusedBehindChecksums++;
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iterations} (seed {Seed}) escaped as {e.GetType().Name}: {e.Message}\n{Convert.ToHexString(mutant)}");
            }
        }

        output.WriteLine($"{iterations} mutants in {clock.ElapsedMilliseconds} ms: {accepted} accepted, {refusedBehindChecksums} refused behind the checksums");
        Assert.True(iterations >= 2_000, $"only {iterations} iterations ran");
        Assert.True(refusedBehindChecksums > iterations / 4, $"only {refusedBehindChecksums} of {iterations} reached the structural checks");
        Assert.True(accepted > 0, "no mutation was harmless, so the acceptance path went untested");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Mutated_pages_and_runs_never_escape_as_another_exception(bool compressed)
    {
        using var dir = new TempDir();
        if (compressed)
        {
            // Compressed runs (LZ4 blocks, 8-aligned) between raw ones.
            MemoryImages.Write(dir.Path, "2", 2, 1, 0,
                [new VmaSpec(0x10_0000, 0x20_0000, [RunSpec.Data(0x10_0000, 100, 1), RunSpec.Data(0x18_0000, 3, 1)])],
                compress: true, pageData: (addr, v) => addr % 0x8000 == 0 ? MemoryImages.Page(addr, v) : MemoryImages.CompressiblePage(addr, v));
        }
        else
        {
            WriteRich(dir.Path);
        }
        byte[] meta = File.ReadAllBytes(dir.File("2.meta"));
        byte[] pages = File.ReadAllBytes(dir.File("2.pages"));
        var runOffsets = Records(meta).Where(r => r.Type == RecordType.Vma)
            .SelectMany(r => Enumerable.Range(0, (int)BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(r.Offset + 8 + 64)))
                .Select(i => r.Offset + 8 + ImageLayout.VmaSize + i * ImageLayout.PageRunSize))
            .ToArray();
        var random = new Random(Seed);

        for (int i = 0; i < 300; i++)
        {
            byte[] m = (byte[])meta.Clone(), p = pages;
            switch (random.Next(4))
            {
                case 0: // a run field gets a random value: addr, npages, pages_off, stored_len, or crc and flags
                    int run = runOffsets[random.Next(runOffsets.Length)] + 8 * random.Next(5);
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(run), Interesting(random));
                    break;
                case 1: // a page byte flips
                    p = (byte[])pages.Clone();
                    p[random.Next(p.Length)] ^= (byte)(1 + random.Next(255));
                    break;
                case 2: // the file is cut or grows
                    p = random.Next(2) == 0 ? pages[..random.Next(pages.Length)] : [.. pages, .. new byte[random.Next(1, 9000)]];
                    break;
                default: // pages_len lies
                    BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(32), Interesting(random));
                    break;
            }
            File.WriteAllBytes(dir.File("9.meta"), Reseal(m));
            File.WriteAllBytes(dir.File("9.pages"), p);
            try
            {
                ProcessImage.ReadMeta(dir.File("9.meta")).VerifyPages(dir.File("9.pages"));
            }
            catch (ImageFormatException e)
            {
                AssertOneLine(e.Message);
            }
        }
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        byte[] b = (byte[])original.Clone();
        switch (random.Next(6))
        {
            case 0: // a few random bytes
                for (int n = random.Next(1, 8); n > 0; n--)
                {
                    b[random.Next(b.Length)] = (byte)random.Next(256);
                }

                return b;
            case 1: // an aligned 32-bit field gets a boundary value
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(random.Next(b.Length / 4) * 4), (uint)Interesting(random));
                return b;
            case 2: // an aligned 64-bit field gets a boundary value
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(random.Next(b.Length / 8) * 8), Interesting(random));
                return b;
            case 3: // truncated, with records_len made to agree half of the time
                b = b[..random.Next(b.Length)];
                if (b.Length >= ImageLayout.HeaderSize && random.Next(2) == 0)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), (ulong)(b.Length - ImageLayout.HeaderSize));
                }

                return b;
            case 4: // a slice duplicated somewhere after the header, records_len adjusted
                int from = random.Next(ImageLayout.HeaderSize, b.Length), len = random.Next(1, Math.Min(200, b.Length - from) + 1);
                int at = random.Next(ImageLayout.HeaderSize, b.Length);
                b = [.. b[..at], .. b[from..(from + len)], .. b[at..]];
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), (ulong)(b.Length - ImageLayout.HeaderSize));
                return b;
            default: // one bit
                b[random.Next(b.Length)] ^= (byte)(1 << random.Next(8));
                return b;
        }
    }

    private static ulong Interesting(Random random) => random.Next(10) switch
    {
        0 => 0,
        1 => 1,
        2 => uint.MaxValue,
        3 => ulong.MaxValue,
        4 => 0x8000_0000,
        5 => 4096,
        6 => (ulong)random.Next(1, 64),
        7 => 1UL << random.Next(64),
        8 => (ulong)random.NextInt64(),
        _ => (ulong)random.Next(1, 512) * 8,
    };
}
