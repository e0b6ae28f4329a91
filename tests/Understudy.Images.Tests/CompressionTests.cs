using System.Buffers.Binary;
using System.Text.Json;
using K4os.Compression.LZ4;
using static Understudy.Images.ImageLayout;
using static Understudy.Images.Tests.MemoryImages;
using static Understudy.Images.Tests.TestImages;

namespace Understudy.Images.Tests;

/// <summary>
/// Format version 2: the 40-byte us_page_run with stored_len, and compressed runs (US_RUN_F_LZ4)
/// through the reader, writer, verifier, run reader and merge.
/// </summary>
public sealed class CompressionTests : IDisposable
{
    private const ulong A = 0x10_0000, B = 0x100_0000, P = 0x1000;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ImageFiles Out(string name) => new(_dir.File(name + ".meta"), _dir.File(name + ".pages"));

    /// <summary>Pages of <see cref="CompressiblePage"/>, except those in [B, B + 64 pages): <see cref="Page"/>, which LZ4 cannot shrink.</summary>
    private static byte[] Mixed(ulong addr, int version) =>
        addr >= B && addr < B + 64 * P ? Page(addr, version) : CompressiblePage(addr, version);

    private static byte[] Pages(ulong addr, int npages, Func<ulong, int, byte[]> page, int version = 1) =>
        [.. Enumerable.Range(0, npages).SelectMany(i => page(addr + (ulong)i * P, version))];

    [Fact]
    public void Compressed_raw_and_hole_runs_round_trip_at_the_gcc_offsets()
    {
        ImageFiles files = Write(_dir.Path, "2", 2, 6, 5,
            [new VmaSpec(A, A + 200 * P, [RunSpec.Data(A, 100, 1), RunSpec.HoleAt(A + 120 * P, 3)]),
             new VmaSpec(B, B + 70 * P, [RunSpec.Data(B, 70, 1)])],
            compress: true, pageData: Mixed);
        byte[] meta = File.ReadAllBytes(files.Meta);
        ProcessImage image = ProcessImage.Parse(meta);

        Assert.Equal(meta, ProcessImageWriter.EncodeMeta(image));
        Assert.Equal(ImageLayout.FormatVersion, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(8)));
        // 100 compressible pages: 64 + 36 as LZ4. 64 random pages: one raw run, and the 6 after it LZ4.
        Assert.Equal(
            [(A, 64ul, PageRunFlags.Lz4), (A + 64 * P, 36ul, PageRunFlags.Lz4), (A + 120 * P, 3ul, PageRunFlags.Hole),
             (B, 64ul, PageRunFlags.None), (B + 64 * P, 6ul, PageRunFlags.Lz4)],
            image.Vmas.SelectMany(v => v.Runs).Select(r => (r.Addr, r.NPages, r.Flags)));
        Assert.All(image.Vmas.SelectMany(v => v.Runs).Where(r => r.IsCompressed), r =>
        {
            Assert.Equal(0ul, r.PagesOff % Lz4RunAlignment);
            Assert.InRange(r.StoredLen, 1ul, r.Bytes - 1);
        });
        PageRun raw = image.Vmas[1].Runs[0];
        Assert.Equal((0ul, 64ul * PageSize), (raw.PagesOff % PageSize, raw.StoredLen));
        Assert.Equal((4, 3, 170L), (image.RunCount, image.CompressedRunCount, image.PageCount));
        Assert.Equal(image.Vmas.SelectMany(v => v.Runs).Sum(r => (long)r.StoredLen), image.StoredPageBytes);
        Assert.True(image.StoredPageBytes < 64 * PageSize + 10 * PageSize, $"{image.StoredPageBytes} bytes stored");
        image.VerifyPages(files.Pages);

        // us_page_run: addr @0, npages @8, pages_off @16, stored_len @24, crc @32, flags @36; 40 bytes each.
        int runs = Records(meta).First(r => r.Type == RecordType.Vma).Offset + RecordHeaderSize + VmaSize;
        PageRun second = image.Vmas[0].Runs[1];
        int at = runs + PageRunSize;
        Assert.Equal((second.Addr, second.NPages, second.PagesOff, second.StoredLen, second.Crc, 2u),
            (BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(at)), BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(at + 8)),
             BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(at + 16)), BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(at + 24)),
             BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(at + 32)), BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(at + 36))));

        // What each run describes, decoded, is what was written.
        var written = new SortedDictionary<ulong, byte[]>();
        foreach (ulong addr in Enumerable.Range(0, 100).Select(i => A + (ulong)i * P).Concat(Enumerable.Range(0, 70).Select(i => B + (ulong)i * P)))
        {
            written[addr] = Mixed(addr, 1);
        }

        AssertSamePages(written, ReadPages(files));
    }

    [Fact]
    public void The_writer_chunks_compresses_where_it_helps_and_keeps_alignment()
    {
        using var writer = new ProcessImageWriter(_dir.File("w.meta"), _dir.File("w.pages"));
        IReadOnlyList<PageRun> small = writer.AppendCompressedRun(A, Pages(A, 150, CompressiblePage));
        IReadOnlyList<PageRun> random = writer.AppendCompressedRun(B, Pages(B, 150, Page));
        PageRun after = writer.AppendRun(B + 200 * P, Page(B + 200 * P, 1));
        FileRecord file = writer.AppendFile(1, 2, "/f", [1, 2, 3]);
        IReadOnlyList<PageRun> last = writer.AppendCompressedRun(B + 300 * P, CompressiblePage(B + 300 * P, 1));

        Assert.Equal([(A, 64ul), (A + 64 * P, 64ul), (A + 128 * P, 22ul)], small.Select(r => (r.Addr, r.NPages)));
        Assert.All(small, r => Assert.True(r.IsCompressed));
        // Back to back, each 8-aligned: at most 7 bytes of padding between two blocks.
        Assert.All(small.Skip(1).Zip(small), p => Assert.InRange(p.First.PagesOff - (p.Second.PagesOff + p.Second.StoredLen), 0ul, 7ul));
        // Incompressible chunks stay raw, one page-aligned run.
        PageRun raw = Assert.Single(random);
        Assert.Equal((B, 150ul, PageRunFlags.None, 0ul), (raw.Addr, raw.NPages, raw.Flags, raw.PagesOff % PageSize));
        Assert.Equal(0ul, after.PagesOff % PageSize);
        Assert.Equal(0ul, file.PagesOff % PageSize);
        Assert.True(Assert.Single(last).IsCompressed);

        ProcessImage image = writer.Finish(Image(2, 1, ImageKind.Full, 0,
            [Vma(A, A + 150 * P, VmaProt.Read, VmaKind.Anon, "", small),
             Vma(B, B + 400 * P, VmaProt.Read, VmaKind.Anon, "", [.. random, after, .. last])]) with { Files = [file] });
        image.VerifyPages(_dir.File("w.pages"));
        // The file ends with the last LZ4 block: no padding after it.
        Assert.Equal(last[0].PagesOff + last[0].StoredLen, image.Header.PagesLen);
        Assert.Equal(Pages(A + 64 * P, 64, CompressiblePage), PageRunReader.ReadPages(_dir.File("w.pages"), small[1]));
        Assert.Equal(Pages(B, 150, Page), PageRunReader.ReadPages(_dir.File("w.pages"), raw));
    }

    [Fact]
    public void Compressed_runs_that_break_the_rules_are_refused_by_the_reader()
    {
        ImageFiles files = Write(_dir.Path, "2", 2, 1, 0, [new VmaSpec(A, A + 100 * P, [RunSpec.Data(A, 10, 1)])],
            compress: true, pageData: CompressiblePage);
        byte[] meta = File.ReadAllBytes(files.Meta);
        int run = Records(meta).First(r => r.Type == RecordType.Vma).Offset + RecordHeaderSize + VmaSize;
        ProcessImage image = ProcessImage.Parse(meta);
        PageRun lz4 = Assert.Single(image.Vmas[0].Runs);
        Assert.True(lz4.IsCompressed);
        ulong bound = Lz4Bound(10 * PageSize);

        Assert.Contains("is compressed at pages_off 4, which is not a multiple of 8", Refused(WithU64(meta, run + 16, 4)).Message);
        Assert.Contains("is compressed over 65 pages; a compressed run covers at most 64", Refused(WithU64(meta, run + 8, 65)).Message);
        Assert.Contains($"is compressed into stored_len 0; an LZ4 block of 10 pages is 1 to {bound} bytes", Refused(WithU64(meta, run + 24, 0)).Message);
        Assert.Contains($"is compressed into stored_len {bound + 1}; an LZ4 block of 10 pages is 1 to {bound} bytes",
            Refused(WithU64(meta, run + 24, bound + 1)).Message);
        Assert.Contains($"has {lz4.StoredLen + 1} bytes at pages_off 0, past the end of the {lz4.StoredLen}-byte .pages file",
            Refused(WithU64(meta, run + 24, lz4.StoredLen + 1)).Message);
        Assert.Contains("past the end of the", Refused(WithU64(meta, run + 16, 8)).Message);
        Assert.Contains("is both a hole and compressed (flags 0x3)", Refused(WithU32(meta, run + 36, 3)).Message);
        // The same bytes without the flag: a raw run must be page-sized and page-aligned.
        Assert.Contains($"has stored_len {lz4.StoredLen}; a raw run of 10 pages stores exactly 40960 bytes", Refused(WithU32(meta, run + 36, 0)).Message);
        Assert.Contains("has pages_off 8, which is not a multiple of 4096", Refused(WithU32(WithU64(meta, run + 16, 8), run + 36, 0)).Message);
        // In the bound exactly, and at the 64-page limit, is fine.
        byte[] widest = WithU64(WithU64(WithU64(meta, 32, Lz4Bound(64 * PageSize)), run + 8, 64), run + 24, Lz4Bound(64 * PageSize));
        Assert.Equal(64ul, ProcessImage.Parse(widest).Vmas[0].Runs[0].NPages);
    }

    [Fact]
    public void A_version_1_image_is_refused_with_what_to_do()
    {
        ImageFiles files = Write(_dir.Path, "2", 2, 1, 0, [new VmaSpec(A, A + P, [RunSpec.Data(A, 1, 1)])]);
        File.WriteAllBytes(files.Meta, WithU32(File.ReadAllBytes(files.Meta), 8, 1));

        var e = Assert.Throws<ImageFormatException>(() => ProcessImage.ReadMeta(files.Meta));

        Assert.Equal($"image {files.Meta} cannot be read: image format version 1 is not supported by this build (it reads version 3); take a new checkpoint", e.Message);
    }

    /// <summary>A compressed image whose first run's stored bytes are replaced, with its CRC recomputed so that only decoding can tell.</summary>
    private (ImageFiles Files, PageRun Run) WithBlock(string name, Func<byte[], byte[]> damage, uint vpid = 2, ulong seq = 3, uint baseSeq = 0)
    {
        ImageFiles files = Write(_dir.Path, name, vpid, seq, baseSeq, [new VmaSpec(A, A + 16 * P, [RunSpec.Data(A, 8, 1)])],
            compress: true, pageData: CompressiblePage);
        ProcessImage image = ProcessImage.ReadMeta(files.Meta);
        PageRun run = image.Vmas[0].Runs[0];
        Assert.True(run.IsCompressed);
        byte[] pages = File.ReadAllBytes(files.Pages);
        byte[] block = damage(pages.AsSpan((int)run.PagesOff, (int)run.StoredLen).ToArray());
        byte[] rewritten = [.. pages.AsSpan(0, (int)run.PagesOff), .. block];
        PageRun changed = run with { StoredLen = (ulong)block.Length, Crc = Crc32C.Compute(block) };
        ProcessImage damaged = image with
        {
            Header = image.Header with { PagesLen = (ulong)rewritten.Length },
            Vmas = [image.Vmas[0] with { Runs = [changed] }],
        };
        File.WriteAllBytes(files.Pages, rewritten);
        File.WriteAllBytes(files.Meta, ProcessImageWriter.EncodeMeta(damaged));
        return (files, changed);
    }

    [Fact]
    public void A_corrupt_block_with_a_matching_checksum_is_refused_by_the_verifier_the_reader_and_the_merge()
    {
        // The block's first token promises more literals than there are bytes: malformed.
        (ImageFiles bad, PageRun run) = WithBlock("bad", block => [0xF0, 0xFF, 0xFF, .. block[3..]]);
        string where = $"page run at 0x{A:x} (8 pages as {run.StoredLen} bytes of LZ4 at offset 0)";
        string expected = $"image {bad.Pages} is corrupt: {where}: its LZ4 block is malformed (it does not decode to 32768 bytes or fewer); use another image or take a new checkpoint";

        ProcessImage image = ProcessImage.ReadMeta(bad.Meta);
        Assert.Equal(expected, Assert.Throws<ImageFormatException>(() => image.VerifyPages(bad.Pages)).Message);
        Assert.Equal(expected, Assert.Throws<ImageFormatException>(() => PageRunReader.ReadPages(bad.Pages, run)).Message);

        // As the base of a merge, and as its increment.
        ImageFiles inc = Write(_dir.Path, "inc", 2, 5, 3, [new VmaSpec(A, A + 16 * P, [RunSpec.Data(A + 12 * P, 1, 2)])], compress: true);
        Assert.Equal(expected, Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(bad, inc, Out("m1"))).Message);
        ImageFiles @base = Write(_dir.Path, "base", 2, 3, 0, [new VmaSpec(A, A + 16 * P, [RunSpec.Data(A, 16, 1)])]);
        (ImageFiles badInc, _) = WithBlock("bad-inc", block => [0xF0, 0xFF, 0xFF, .. block[3..]], seq: 5, baseSeq: 3);
        var e = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(@base, badInc, Out("m2")));
        Assert.StartsWith($"image {badInc.Pages} is corrupt: {where}: its LZ4 block is malformed", e.Message);
        Assert.False(File.Exists(Out("m1").Meta) || File.Exists(Out("m2").Meta) || File.Exists(Out("m2").Pages));
    }

    [Fact]
    public void A_block_of_another_length_is_refused()
    {
        // A valid LZ4 block, but of 4 pages where the run has 8.
        (ImageFiles shorter, PageRun run) = WithBlock("short", _ =>
        {
            byte[] data = Pages(A, 4, CompressiblePage);
            byte[] block = new byte[LZ4Codec.MaximumOutputSize(data.Length)];
            return block[..LZ4Codec.Encode(data, block)];
        });
        var e = Assert.Throws<ImageFormatException>(() => ProcessImage.ReadMeta(shorter.Meta).VerifyPages(shorter.Pages));
        Assert.Contains($"page run at 0x{A:x} (8 pages as {run.StoredLen} bytes of LZ4 at offset 0): its LZ4 block decodes to 16384 bytes, not the 32768 of its pages", e.Message);

        // Of 16 pages where the run has 8: decoding would write past them.
        (ImageFiles longer, _) = WithBlock("long", _ =>
        {
            byte[] data = Pages(A, 16, CompressiblePage);
            byte[] block = new byte[LZ4Codec.MaximumOutputSize(data.Length)];
            return block[..LZ4Codec.Encode(data, block)];
        });
        Assert.Contains("its LZ4 block is malformed", Assert.Throws<ImageFormatException>(() => ProcessImage.ReadMeta(longer.Meta).VerifyPages(longer.Pages)).Message);

        // Trailing bytes after a complete block.
        (ImageFiles trailing, _) = WithBlock("trailing", block => [.. block, 0, 0, 0, 0]);
        Assert.Contains("its LZ4 block is malformed", Assert.Throws<ImageFormatException>(() => ProcessImage.ReadMeta(trailing.Meta).VerifyPages(trailing.Pages)).Message);
    }

    [Fact]
    public void Damaged_blocks_never_escape_as_another_exception()
    {
        var random = new Random(20261125);
        int refused = 0;
        for (int i = 0; i < 400; i++)
        {
            (ImageFiles files, PageRun run) = WithBlock($"f{i}", block =>
            {
                byte[] b = (byte[])block.Clone();
                switch (random.Next(3))
                {
                    case 0:
                        for (int n = random.Next(1, 6); n > 0; n--)
                        {
                            b[random.Next(b.Length)] = (byte)random.Next(256);
                        }

                        return b;
                    case 1:
                        return b[..random.Next(1, b.Length)];
                    default:
                        var noise = new byte[random.Next(1, 300)];
                        random.NextBytes(noise);
                        return noise;
                }
            });
            try
            {
                ProcessImage.ReadMeta(files.Meta).VerifyPages(files.Pages);
                // A harmless change (a literal byte) decodes, to other pages: the run reader agrees.
                Assert.Equal(8 * PageSize, PageRunReader.ReadPages(files.Pages, run).Length);
            }
            catch (ImageFormatException e)
            {
                AssertOneLine(e.Message);
                Assert.Contains("LZ4", e.Message);
                refused++;
            }
        }
        Assert.InRange(refused, 200, 400);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void A_compressed_merge_describes_the_same_pages_as_a_raw_one(bool compressBase, bool compressIncrement)
    {
        VmaSpec[] baseLayout =
        [
            new(A, A + 300 * P, [RunSpec.Data(A, 200, 1), RunSpec.Data(A + 250 * P, 30, 1)]),
            new(B, B + 100 * P, [RunSpec.Data(B, 90, 1)]),
        ];
        VmaSpec[] incLayout =
        [
            new(A, A + 300 * P, [RunSpec.Data(A + 10 * P, 70, 2), RunSpec.HoleAt(A + 100 * P, 5), RunSpec.Data(A + 240 * P, 20, 2)]),
            new(B, B + 100 * P, [RunSpec.Data(B + 60 * P, 10, 2)]),
        ];
        ImageFiles rawBase = Write(_dir.Path, "raw-base", 2, 3, 0, baseLayout, pageData: Mixed);
        ImageFiles rawInc = Write(_dir.Path, "raw-inc", 2, 5, 3, incLayout, pageData: Mixed);
        ImageFiles lzBase = Write(_dir.Path, "lz-base", 2, 3, 0, baseLayout, pageData: Mixed, compress: compressBase);
        ImageFiles lzInc = Write(_dir.Path, "lz-inc", 2, 5, 3, incLayout, pageData: Mixed, compress: compressIncrement);

        MergeResult raw = ImageMerger.Merge(rawBase, rawInc, Out("raw"));
        MergeResult compressed = ImageMerger.Merge(lzBase, lzInc, Out("lz"));

        AssertSamePages(ReadPages(Out("raw")), ReadPages(Out("lz")));
        AssertSamePages(Apply(ReadPages(rawBase), rawInc), ReadPages(Out("lz")));
        Assert.Equal(raw.Statistics, compressed.Statistics);
        Assert.Equal(0, raw.Image.CompressedRunCount);
        // Compressed in chunks of at most 64 pages, except the random pages at B, which stay raw.
        var runs = compressed.Image.Vmas.SelectMany(v => v.Runs).ToList();
        Assert.All(runs.Where(r => r.IsCompressed), r => Assert.True(r.NPages <= Lz4RunPages && r.PagesOff % Lz4RunAlignment == 0));
        Assert.All(runs.Where(r => !r.IsCompressed), r => Assert.Equal((0ul, r.Bytes), (r.PagesOff % PageSize, r.StoredLen)));
        Assert.Contains(runs, r => !r.IsCompressed && r.Addr >= B);
        Assert.True(compressed.Image.CompressedRunCount >= 5);
        Assert.True(new FileInfo(Out("lz").Pages).Length < new FileInfo(Out("raw").Pages).Length / 2);
        compressed.Image.VerifyPages(Out("lz").Pages);

        // Deterministic like the raw merge.
        ImageMerger.Merge(lzBase, lzInc, Out("lz2"));
        Assert.Equal(File.ReadAllBytes(Out("lz").Pages), File.ReadAllBytes(Out("lz2").Pages));
        Assert.Equal(File.ReadAllBytes(Out("lz").Meta), File.ReadAllBytes(Out("lz2").Meta));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_chain_of_compressed_increments_merges_like_the_model(int seed)
    {
        var random = new Random(seed);
        byte[] PageOf(ulong addr, int version) => (addr / P + (ulong)version) % 7 == 0 ? Page(addr, version) : CompressiblePage(addr, version);
        List<VmaSpec> layout = [new(A, A + 400 * P, []), new(B, B + 150 * P, [])];
        ImageFiles current = Write(_dir.Path, "c1", 4, 1, 0, layout.Select(v => v with { Runs = [RunSpec.Data(v.Start, (int)((v.End - v.Start) / P), 1)] }),
            compress: true, pageData: PageOf);
        var expected = ReadPages(current);
        for (int seq = 2; seq <= 4; seq++)
        {
            var runs = layout.Select(v =>
            {
                var specs = new List<RunSpec>();
                for (ulong at = v.Start + (ulong)random.Next(0, 20) * P; at < v.End; at += (ulong)random.Next(1, 30) * P)
                {
                    int n = (int)Math.Min((ulong)random.Next(1, 90), (v.End - at) / P);
                    specs.Add(random.Next(4) == 0 ? RunSpec.HoleAt(at, n) : RunSpec.Data(at, n, seq));
                    at += (ulong)n * P;
                }
                return v with { Runs = specs };
            });
            ImageFiles inc = Write(_dir.Path, $"i{seq}", 4, (ulong)seq, (uint)seq - 1, runs, compress: random.Next(2) == 0, pageData: PageOf);
            ImageFiles merged = Out($"m{seq}");

            ImageMerger.Merge(current, inc, merged);

            expected = Apply(expected, inc);
            AssertSamePages(expected, ReadPages(merged));
            ProcessImage.ReadMeta(merged.Meta).VerifyPages(merged.Pages);
            current = merged;
        }
    }

    [Fact]
    public void Inspect_shows_stored_and_raw_bytes_and_compressed_runs()
    {
        var store = new CheckpointStore(_dir.File("state"));
        (string id, long seq, string dir) = store.CreateStaging("web");
        ImageFiles written = Write(dir, "2", 2, (ulong)seq, 0, [new VmaSpec(A, A + 100 * P, [RunSpec.Data(A, 70, 1)])],
            compress: true, pageData: CompressiblePage);
        ProcessImage image = ProcessImage.ReadMeta(written.Meta);
        store.Commit("web", id, CheckpointManifest.Create("web", seq, DateTime.UtcNow, [ManifestMember.FromFiles(dir, 2, 1, "db", 0)]));

        using var doc = JsonDocument.Parse(store.InspectJson("web", id));
        JsonElement member = doc.RootElement.GetProperty("members")[0];
        JsonElement totals = member.GetProperty("pageTotals");
        Assert.Equal((2, 70, 70 * PageSize, image.StoredPageBytes, 2),
            (totals.GetProperty("runs").GetInt32(), totals.GetProperty("pages").GetInt32(), totals.GetProperty("bytes").GetInt32(),
             totals.GetProperty("storedBytes").GetInt64(), totals.GetProperty("compressedRuns").GetInt32()));
        JsonElement run = member.GetProperty("vmas")[0].GetProperty("runs")[1];
        Assert.Equal((6, image.Vmas[0].Runs[1].StoredLen, true),
            (run.GetProperty("npages").GetInt32(), run.GetProperty("storedLen").GetUInt64(), run.GetProperty("lz4").GetBoolean()));
        Assert.False(member.TryGetProperty("baseVpid", out _));
        store.Verify("web", id);
    }
}
