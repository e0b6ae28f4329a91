using static Understudy.Images.Tests.MemoryImages;

namespace Understudy.Images.Tests;

/// <summary>
/// The merge of an incremental image into its base, on images written by ProcessImageWriter,
/// compared page by page with <see cref="MemoryImages.Apply"/>.
/// </summary>
public sealed class ImageMergerTests : IDisposable
{
    private const ulong A = 0x10_0000, B = 0x20_0000, C = 0x30_0000, D = 0x40_0000, E = 0x50_0000, F = 0x60_0000;
    private const ulong P = 0x1000;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ImageFiles Out(string name = "merged") => new(_dir.File(name + ".meta"), _dir.File(name + ".pages"));

    private ImageFiles Base(params VmaSpec[] vmas) => Write(_dir.Path, "base", 2, 3, 0, vmas);

    private ImageFiles Increment(params VmaSpec[] vmas) => Write(_dir.Path, "inc", 2, 5, 3, vmas);

    [Fact]
    public void Data_holes_and_unchanged_pages_of_a_delta_mapping()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 16 * P, [RunSpec.Data(A, 4, 1), RunSpec.Data(A + 8 * P, 1, 1)]));
        ImageFiles inc = Increment(new VmaSpec(A, A + 16 * P,
            [RunSpec.Data(A + P, 1, 2), RunSpec.HoleAt(A + 3 * P, 1), RunSpec.Data(A + 10 * P, 1, 2)]));

        MergeResult result = ImageMerger.Merge(@base, inc, Out());

        var pages = ReadPages(Out());
        AssertSamePages(new()
        {
            [A] = Page(A, 1),
            [A + P] = Page(A + P, 2),
            [A + 2 * P] = Page(A + 2 * P, 1),
            [A + 8 * P] = Page(A + 8 * P, 1),
            [A + 10 * P] = Page(A + 10 * P, 2),
        }, pages);
        // Base and increment pages that follow each other form one run.
        Assert.Equal([(A, 3ul), (A + 8 * P, 1ul), (A + 10 * P, 1ul)], result.Image.Vmas[0].Runs.Select(r => (r.Addr, r.NPages)));
        Assert.Equal(new MergeStatistics(PagesFromBase: 3, PagesFromIncrement: 2, HolePages: 1, DroppedBasePages: 2, FileBytes: 0), result.Statistics);
    }

    [Fact]
    public void The_result_is_a_full_image_of_the_increments_checkpoint_with_its_records()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 4 * P, [RunSpec.Data(A, 4, 1)]));
        ImageFiles inc = Write(_dir.Path, "inc", 2, 5, 3, [new VmaSpec(A, A + 4 * P, [RunSpec.Data(A, 1, 2)])], seed: 77);

        ImageMerger.Merge(@base, inc, Out());

        ProcessImage merged = ProcessImage.ReadMeta(Out().Meta);
        ProcessImage increment = ProcessImage.ReadMeta(inc.Meta);
        Assert.Equal((ImageKind.Full, 2u, 5ul, 0u), (merged.Header.Kind, merged.Header.Vpid, merged.Header.CheckpointSeq, merged.Header.BaseSeq));
        Assert.Equal(77ul, merged.Misc.PendingShared);
        Assert.Equal(increment.Proc, merged.Proc with { Auxv = increment.Proc.Auxv });
        Assert.Equal(increment.Threads, merged.Threads);
        Assert.Equal(increment.Fds.Select(f => (f.Fd, f.Kind, f.Path)), merged.Fds.Select(f => (f.Fd, f.Kind, f.Path)));
        Assert.Equal(increment.Sigactions, merged.Sigactions);
        merged.VerifyPages(Out().Pages);
        Assert.All(merged.Vmas.SelectMany(v => v.Runs), r => Assert.False(r.IsHole));
    }

    [Fact]
    public void A_complete_mapping_takes_nothing_from_the_base()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 1)]));
        ImageFiles inc = Increment(new VmaSpec(A, A + 8 * P, [RunSpec.Data(A + 2 * P, 2, 2), RunSpec.HoleAt(A + 5 * P, 1)], Complete: true));

        MergeResult result = ImageMerger.Merge(@base, inc, Out());

        AssertSamePages(new() { [A + 2 * P] = Page(A + 2 * P, 2), [A + 3 * P] = Page(A + 3 * P, 2) }, ReadPages(Out()));
        Assert.Equal(VmaFlags.None, result.Image.Vmas[0].Flags); // complete goes without saying in a full image
        Assert.Equal(8, result.Statistics.DroppedBasePages);
    }

    [Fact]
    public void Mappings_added_removed_grown_shrunk_and_moved()
    {
        ImageFiles @base = Base(
            new VmaSpec(A, A + 4 * P, [RunSpec.Data(A, 4, 1)]),                         // removed
            new VmaSpec(B, B + 2 * P, [RunSpec.Data(B, 2, 1)]),                         // grown
            new VmaSpec(C, C + 4 * P, [RunSpec.Data(C, 4, 1)]),                         // shrunk
            new VmaSpec(D, D + 4 * P, [RunSpec.Data(D, 2, 1)], Kind: VmaKind.Heap),     // unchanged
            new VmaSpec(F, F + 4 * P, [RunSpec.Data(F, 4, 1)]));                        // replaced by a new mapping
        ImageFiles inc = Increment(
            new VmaSpec(B, B + 4 * P, [RunSpec.Data(B + 3 * P, 1, 2)]),
            new VmaSpec(C, C + 2 * P, []),
            new VmaSpec(D, D + 4 * P, [], Kind: VmaKind.Heap),
            new VmaSpec(E, E + 2 * P, [RunSpec.Data(E, 1, 2)], Complete: true),        // added
            new VmaSpec(F + P, F + 3 * P, [RunSpec.Data(F + 2 * P, 1, 2)], Complete: true));

        MergeResult result = ImageMerger.Merge(@base, inc, Out());

        AssertSamePages(new()
        {
            [B] = Page(B, 1), [B + P] = Page(B + P, 1), [B + 3 * P] = Page(B + 3 * P, 2),
            [C] = Page(C, 1), [C + P] = Page(C + P, 1),
            [D] = Page(D, 1), [D + P] = Page(D + P, 1),
            [E] = Page(E, 2),
            [F + 2 * P] = Page(F + 2 * P, 2),
        }, ReadPages(Out()));
        Assert.Equal([(B, B + 4 * P), (C, C + 2 * P), (D, D + 4 * P), (E, E + 2 * P), (F + P, F + 3 * P)],
            result.Image.Vmas.Select(v => (v.Start, v.End)));
        Assert.Equal(VmaKind.Heap, result.Image.Vmas[2].Kind);
        Assert.Equal(4 + 2 + 4, result.Statistics.DroppedBasePages);
    }

    [Fact]
    public void File_contents_come_from_the_increment_aligned_and_checked()
    {
        ImageFiles @base = Write(_dir.Path, "base", 2, 3, 0, [new VmaSpec(A, A + P, [RunSpec.Data(A, 1, 1)])],
            files: [("/data/old.log", new byte[5000])]);
        byte[] log = [.. Enumerable.Range(0, 10_000).Select(i => (byte)(i * 31))];
        ImageFiles inc = Write(_dir.Path, "inc", 2, 5, 3, [new VmaSpec(A, A + P, [])],
            files: [("/data/app.log", log), ("/data/empty", []), ("/data/caf\u00e9", "x"u8.ToArray())]);

        MergeResult result = ImageMerger.Merge(@base, inc, Out());

        ProcessImage merged = ProcessImage.ReadMeta(Out().Meta);
        merged.VerifyPages(Out().Pages);
        Assert.Equal(["/data/app.log", "/data/empty", "/data/caf\u00e9"], merged.Files.Select(f => f.Path));
        Assert.All(merged.Files, f => Assert.Equal(0ul, f.PagesOff % ImageLayout.PageSize));
        byte[] pages = File.ReadAllBytes(Out().Pages);
        Assert.Equal(log, pages.AsSpan((int)merged.Files[0].PagesOff, log.Length).ToArray());
        Assert.Equal((0ul, 0u), (merged.Files[1].Size, merged.Files[1].Crc));
        Assert.Equal(10_001, result.Statistics.FileBytes);
        AssertSamePages(new() { [A] = Page(A, 1) }, ReadPages(Out()));
    }

    [Fact]
    public void Runs_longer_than_a_read_chunk_are_streamed_and_coalesced()
    {
        // 700 pages is more than two 1 MiB chunks; the increment cuts the base run in three.
        ImageFiles @base = Base(new VmaSpec(A, A + 1000 * P, [RunSpec.Data(A, 700, 1)]));
        ImageFiles inc = Increment(new VmaSpec(A, A + 1000 * P, [RunSpec.Data(A + 300 * P, 300, 2), RunSpec.HoleAt(A + 650 * P, 10)]));

        MergeResult result = ImageMerger.Merge(@base, inc, Out());

        AssertSamePages(Apply(ReadPages(@base), inc), ReadPages(Out()));
        Assert.Equal([(A, 650ul), (A + 660 * P, 40ul)], result.Image.Vmas[0].Runs.Select(r => (r.Addr, r.NPages)));
    }

    [Fact]
    public void The_same_inputs_give_the_same_bytes()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 64 * P, [RunSpec.Data(A, 20, 1), RunSpec.Data(A + 30 * P, 20, 1)]));
        ImageFiles inc = Write(_dir.Path, "inc", 2, 5, 3, [new VmaSpec(A, A + 64 * P, [RunSpec.Data(A + 10 * P, 25, 2)])],
            files: [("/f", new byte[100])]);

        ImageMerger.Merge(@base, inc, Out("one"));
        ImageMerger.Merge(@base, inc, Out("two"));

        Assert.Equal(File.ReadAllBytes(Out("one").Meta), File.ReadAllBytes(Out("two").Meta));
        Assert.Equal(File.ReadAllBytes(Out("one").Pages), File.ReadAllBytes(Out("two").Pages));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void A_chain_of_random_increments_merges_like_the_model(int seed)
    {
        var random = new Random(seed);
        var layout = RandomLayout(random);
        ImageFiles current = Write(_dir.Path, "c1", 4, 1, 0, layout.Select(v => v with { Runs = RandomRuns(random, v, 1, holes: false) }));
        var expected = ReadPages(current);

        for (int seq = 2; seq <= 5; seq++)
        {
            layout = Evolve(random, layout);
            ImageFiles inc = Write(_dir.Path, $"i{seq}", 4, (ulong)seq, (uint)seq - 1,
                layout.Select(v => v with { Runs = RandomRuns(random, v, seq, holes: true) }));
            ImageFiles merged = Out($"m{seq}");

            ImageMerger.Merge(current, inc, merged);

            expected = Apply(expected, inc);
            AssertSamePages(expected, ReadPages(merged));
            ProcessImage.ReadMeta(merged.Meta).VerifyPages(merged.Pages);
            current = merged;
        }
    }

    // A chain merged in one pass is the merge of merges, byte for byte, without the images in between.
    [Theory]
    [InlineData(11, false)]
    [InlineData(12, false)]
    [InlineData(13, false)]
    [InlineData(14, true)]
    [InlineData(15, true)]
    public void A_chain_merged_in_one_pass_gives_the_bytes_of_merging_it_step_by_step(int seed, bool compress)
    {
        var random = new Random(seed);
        var layout = RandomLayout(random);
        ImageFiles full = Write(_dir.Path, "c1", 4, 1, 0, layout.Select(v => v with { Runs = RandomRuns(random, v, 1, holes: false) }),
            compress: compress, pageData: compress ? CompressiblePage : null);
        Assert.Equal(compress, ProcessImage.ReadMeta(full.Meta).CompressedRunCount > 0);
        var links = new List<ChainLink>();
        ImageFiles stepwise = full;
        var expected = ReadPages(full);
        for (int seq = 2; seq <= 6; seq++)
        {
            layout = Evolve(random, layout);
            ImageFiles inc = Write(_dir.Path, $"i{seq}", 4, (ulong)seq, (uint)seq - 1,
                layout.Select(v => v with { Runs = RandomRuns(random, v, seq, holes: true) }));
            links.Add(new ChainLink(inc));
            ImageFiles merged = Out($"m{seq}");
            ImageMerger.Merge(stepwise, inc, merged);
            expected = Apply(expected, inc);
            stepwise = merged;
        }

        MergeResult result = ImageMerger.MergeChain(full, links, Out("chain"));

        Assert.Equal(File.ReadAllBytes(stepwise.Meta), File.ReadAllBytes(Out("chain").Meta));
        Assert.Equal(File.ReadAllBytes(stepwise.Pages), File.ReadAllBytes(Out("chain").Pages));
        AssertSamePages(expected, ReadPages(Out("chain")));
        Assert.Equal((ImageKind.Full, 6ul), (result.Image.Header.Kind, result.Image.Header.CheckpointSeq));
        result.Image.VerifyPages(Out("chain").Pages);
    }

    [Fact]
    public void A_chain_through_a_forked_process_applies_its_first_increment_to_the_parents_image()
    {
        ImageFiles parent = Write(_dir.Path, "parent", 2, 3, 0, [new VmaSpec(A, A + 4 * P, [RunSpec.Data(A, 4, 1)])]);
        ImageFiles child = Write(_dir.Path, "child", 7, 5, 3, [new VmaSpec(A, A + 4 * P, [RunSpec.Data(A + P, 1, 2)])]);
        ImageFiles again = Write(_dir.Path, "again", 7, 6, 5, [new VmaSpec(A, A + 4 * P, [RunSpec.Data(A + 3 * P, 1, 3)])]);

        MergeResult result = ImageMerger.MergeChain(parent, [new ChainLink(child, BaseVpid: 2), new ChainLink(again)], Out());

        Assert.Equal((7u, 6ul), (result.Image.Header.Vpid, result.Image.Header.CheckpointSeq));
        AssertSamePages(new()
        {
            [A] = Page(A, 1), [A + P] = Page(A + P, 2), [A + 2 * P] = Page(A + 2 * P, 1), [A + 3 * P] = Page(A + 3 * P, 3),
        }, ReadPages(Out()));
        Assert.Contains("it is of vpid 7 but the base image is of vpid 2",
            Assert.Throws<ImageFormatException>(() => ImageMerger.MergeChain(parent, [new ChainLink(child), new ChainLink(again)], Out("x"))).Message);
    }

    [Fact]
    public void A_chain_with_a_missing_link_or_a_corrupt_image_in_the_middle_is_refused_and_no_output_is_left()
    {
        ImageFiles full = Write(_dir.Path, "f1", 2, 1, 0, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 1)])]);
        ImageFiles i2 = Write(_dir.Path, "i2", 2, 2, 1, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A + 2 * P, 2, 2)])]);
        ImageFiles i3 = Write(_dir.Path, "i3", 2, 3, 2, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A + 5 * P, 1, 3)])]);
        ImageFiles i4 = Write(_dir.Path, "i4", 2, 4, 3, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 4)])]);

        var gap = Assert.Throws<ImageFormatException>(() => ImageMerger.MergeChain(full, [new ChainLink(i2), new ChainLink(i4)], Out()));
        TestImages.AssertOneLine(gap.Message);
        Assert.Contains("i4.meta cannot be merged: it applies to checkpoint 3 but the base image belongs to checkpoint 2", gap.Message);

        // Every page of i3 is hidden by i4's; it is read and checked all the same.
        byte[] pages = File.ReadAllBytes(i3.Pages);
        pages[17] ^= 0x40;
        File.WriteAllBytes(i3.Pages, pages);
        var corrupt = Assert.Throws<ImageFormatException>(() => ImageMerger.MergeChain(full, [new ChainLink(i2), new ChainLink(i3), new ChainLink(i4)], Out()));
        Assert.Matches($@"^image {Path.Combine(_dir.Path, "i3.pages").Replace(".", @"\.")} is corrupt: page run at 0x105000 \(1 pages at offset 0\) checksum mismatch", corrupt.Message);
        Assert.False(File.Exists(Out().Meta));
        Assert.False(File.Exists(Out().Pages));
    }

    // Seeded damage to any input of a chain: the merge refuses it with one line, or (damage where
    // nothing is read, such as padding) writes exactly what the intact chain gives. Never another
    // exception, never other bytes.
    [Fact]
    public void A_damaged_input_of_a_chain_is_refused_or_changes_nothing()
    {
        var random = new Random(20261207);
        var layout = RandomLayout(random);
        var inputs = new List<ImageFiles> { Write(_dir.Path, "c1", 4, 1, 0, layout.Select(v => v with { Runs = RandomRuns(random, v, 1, holes: false) })) };
        for (int seq = 2; seq <= 4; seq++)
        {
            layout = Evolve(random, layout);
            inputs.Add(Write(_dir.Path, $"i{seq}", 4, (ulong)seq, (uint)seq - 1, layout.Select(v => v with { Runs = RandomRuns(random, v, seq, holes: true) })));
        }
        MergeResult Merge(string name) => ImageMerger.MergeChain(inputs[0], inputs.Skip(1).Select(f => new ChainLink(f)).ToList(), Out(name));
        Merge("intact");
        byte[] intact = File.ReadAllBytes(Out("intact").Pages);

        int refused = 0;
        for (int i = 0; i < 200; i++)
        {
            string path = random.Next(2) == 0 ? inputs[random.Next(inputs.Count)].Pages : inputs[random.Next(inputs.Count)].Meta;
            byte[] original = File.ReadAllBytes(path);
            byte[] damaged = (byte[])original.Clone();
            if (random.Next(8) == 0)
            {
                damaged = damaged[..random.Next(damaged.Length)];
            }
            else
            {
                damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
            }
            File.WriteAllBytes(path, damaged);
            try
            {
                Merge("damaged");
                Assert.Equal(intact, File.ReadAllBytes(Out("damaged").Pages));
            }
            catch (ImageFormatException e)
            {
                TestImages.AssertOneLine(e.Message);
                Assert.False(File.Exists(Out("damaged").Pages));
                refused++;
            }
            finally
            {
                File.WriteAllBytes(path, original);
            }
        }
        Assert.True(refused > 100, $"only {refused} of 200 damaged chains were refused");
    }

    [Fact]
    public void An_increment_of_another_process_or_base_is_refused()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + P, []));
        ImageFiles otherVpid = Write(_dir.Path, "vpid9", 9, 5, 3, [new VmaSpec(A, A + P, [])]);
        ImageFiles otherBase = Write(_dir.Path, "base4", 2, 5, 4, [new VmaSpec(A, A + P, [])]);
        ImageFiles full = Write(_dir.Path, "full", 2, 5, 0, [new VmaSpec(A, A + P, [])]);
        ImageFiles inc = Increment(new VmaSpec(A, A + P, []));

        Assert.Contains("it is of vpid 9 but the base image is of vpid 2", Refused(@base, otherVpid));
        Assert.Contains("it applies to checkpoint 4 but the base image belongs to checkpoint 3", Refused(@base, otherBase));
        Assert.Contains("it is a full image already", Refused(@base, full));
        ImageFiles incrementalBase = Write(_dir.Path, "base-inc", 2, 3, 2, [new VmaSpec(A, A + P, [])]);
        Assert.Contains("base-inc.meta cannot be merged: it is itself incremental (on checkpoint 2)", Refused(incrementalBase, inc));
        Assert.Throws<ArgumentException>(() => ImageMerger.Merge(@base, inc, new ImageFiles(_dir.File("x.meta"), inc.Pages)));
        Assert.False(File.Exists(Out().Meta));
    }

    [Fact]
    public void A_corrupt_base_page_is_refused_and_no_output_is_left()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 1)]));
        ImageFiles inc = Increment(new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 2)])); // the base page is not even used
        byte[] pages = File.ReadAllBytes(@base.Pages);
        pages[5 * ImageLayout.PageSize + 17] ^= 0x40;
        File.WriteAllBytes(@base.Pages, pages);

        var e = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(@base, inc, Out()));

        TestImages.AssertOneLine(e.Message);
        Assert.Matches($@"^image {Path.Combine(_dir.Path, "base.pages").Replace(".", @"\.")} is corrupt: page run at 0x100000 \(8 pages at offset 0\) checksum mismatch", e.Message);
        Assert.False(File.Exists(Out().Meta));
        Assert.False(File.Exists(Out().Pages));
    }

    [Fact]
    public void A_truncated_increment_is_refused()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 2 * P, []));
        ImageFiles inc = Increment(new VmaSpec(A, A + 2 * P, [RunSpec.Data(A, 2, 2)]));
        File.WriteAllBytes(inc.Pages, File.ReadAllBytes(inc.Pages)[..ImageLayout.PageSize]);

        var e = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(@base, inc, Out()));
        Assert.Contains("the file is 4096 bytes but the header says 8192", e.Message);
    }

    [Fact]
    public void The_pace_callback_runs_between_chunks_and_may_stop_the_merge()
    {
        ImageFiles @base = Base(new VmaSpec(A, A + 600 * P, [RunSpec.Data(A, 600, 1)]));
        ImageFiles inc = Increment(new VmaSpec(A, A + 600 * P, [RunSpec.Data(A, 1, 2)]));
        int calls = 0;
        ImageMerger.Merge(@base, inc, Out(), pace: () => calls++);
        Assert.True(calls >= 3, $"pace ran {calls} times");

        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => ImageMerger.Merge(@base, inc, Out("cancelled"), pace: cancel.Cancel, cancel.Token));
        Assert.False(File.Exists(Out("cancelled").Meta));
        Assert.False(File.Exists(Out("cancelled").Pages));
    }

    private string Refused(ImageFiles @base, ImageFiles inc)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(@base, inc, Out()));
        TestImages.AssertOneLine(e.Message);
        return e.Message;
    }

    /// <summary>A few mappings of 1 to 40 pages with gaps between them.</summary>
    private static List<VmaSpec> RandomLayout(Random random)
    {
        var vmas = new List<VmaSpec>();
        ulong at = 0x7f00_0000_0000;
        for (int i = random.Next(1, 6); i > 0; i--)
        {
            at += (ulong)random.Next(0, 4) * P;
            ulong end = at + (ulong)random.Next(1, 41) * P;
            vmas.Add(new VmaSpec(at, end, []));
            at = end;
        }
        return vmas;
    }

    /// <summary>Mappings move on: some are kept, grown or shrunk, some go, some come, some become complete.</summary>
    private static List<VmaSpec> Evolve(Random random, List<VmaSpec> layout)
    {
        var next = new List<VmaSpec>();
        ulong floor = 0;
        foreach (VmaSpec vma in layout)
        {
            int choice = random.Next(6);
            if (choice == 0)
            {
                continue; // unmapped
            }

            ulong start = vma.Start, end = vma.End;
            if (choice == 1)
            {
                end += (ulong)random.Next(1, 8) * P; // grown (may reach into the gap after)
            }
            else if (choice == 2 && end - start > P)
            {
                end -= P;
            }

            if (next.Count > 0 && start < next[^1].End)
            {
                start = next[^1].End;
            }

            if (next.Count > 0 && end <= start)
            {
                continue;
            }

            start = Math.Max(start, floor);
            if (end <= start)
            {
                continue;
            }

            next.Add(new VmaSpec(start, end, [], Complete: choice == 3));
            floor = end;
        }
        // A new mapping above everything.
        ulong top = Math.Max(floor, layout.Count > 0 ? layout[^1].End : 0x7f00_0000_0000) + (ulong)random.Next(1, 4) * P;
        next.Add(new VmaSpec(top, top + (ulong)random.Next(1, 10) * P, [], Complete: true));
        return next;
    }

    /// <summary>Random data runs (and holes, in an increment) over a mapping, ascending and not touching.</summary>
    private static List<RunSpec> RandomRuns(Random random, VmaSpec vma, int version, bool holes)
    {
        var runs = new List<RunSpec>();
        ulong at = vma.Start;
        while (true)
        {
            at += (ulong)random.Next(0, 4) * P;
            if (at >= vma.End)
            {
                break;
            }

            int n = (int)Math.Min((ulong)random.Next(1, 6), (vma.End - at) / P);
            runs.Add(holes && random.Next(3) == 0 ? RunSpec.HoleAt(at, n) : RunSpec.Data(at, n, version));
            at += (ulong)n * P;
        }
        return runs;
    }
}
