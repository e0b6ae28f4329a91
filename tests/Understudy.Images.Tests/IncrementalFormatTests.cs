using System.Buffers.Binary;
using System.Text.Json;
using static Understudy.Images.ImageLayout;
using static Understudy.Images.Tests.TestImages;

namespace Understudy.Images.Tests;

/// <summary>Hole runs, complete mappings and FILE records (us_image.h, incremental images and storage checkpointing).</summary>
public sealed class IncrementalFormatTests : IDisposable
{
    private const ulong A = 0x7f00_0000_0000, P = 0x1000;

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>An incremental image: a delta mapping with data and hole runs, a complete one, and two files.</summary>
    private ImageFiles WriteIncremental(string name = "2") => MemoryImages.Write(_dir.Path, name, 2, 6, 5,
        [
            new VmaSpec(A, A + 16 * P, [RunSpec.Data(A, 2, 1), RunSpec.HoleAt(A + 4 * P, 3), RunSpec.Data(A + 9 * P, 1, 1)]),
            new VmaSpec(A + 32 * P, A + 40 * P, [RunSpec.Data(A + 33 * P, 2, 1)], Complete: true),
        ],
        files: [("/var/lib/app/data.db", [.. Enumerable.Range(0, 6000).Select(i => (byte)i)]), ("/var/lib/app/empty", [])]);

    [Fact]
    public void Holes_complete_mappings_and_files_round_trip()
    {
        ImageFiles files = WriteIncremental();
        byte[] bytes = File.ReadAllBytes(files.Meta);
        ProcessImage image = ProcessImage.Parse(bytes);

        Assert.Equal(bytes, ProcessImageWriter.EncodeMeta(image));
        VmaRecord delta = image.Vmas[0], complete = image.Vmas[1];
        Assert.Equal(VmaFlags.None, delta.Flags);
        Assert.Equal(VmaFlags.Complete, complete.Flags);
        Assert.False(delta.IsCompleteIn(ImageKind.Incremental));
        Assert.True(complete.IsCompleteIn(ImageKind.Incremental));
        Assert.True(delta.IsCompleteIn(ImageKind.Full));
        Assert.Equal(PageRun.Hole(A + 4 * P, 3), delta.Runs[1]);
        Assert.Equal((0ul, 0u, 0ul), (delta.Runs[1].PagesOff, delta.Runs[1].Crc, delta.Runs[1].StoredLen));

        // Holes carry no data and are counted apart.
        Assert.Equal((3, 5L, 1, 3L), (image.RunCount, image.PageCount, image.HoleRunCount, image.HolePageCount));
        Assert.Equal(6000L, image.FileBytes);
        Assert.Equal([("/var/lib/app/data.db", 6000ul), ("/var/lib/app/empty", 0ul)], image.Files.Select(f => (f.Path, f.Size)));
        Assert.All(image.Files, f => Assert.Equal(0ul, f.PagesOff % PageSize));
        // Five pages of data, then 6000 bytes of file padded to two pages: every start stays aligned.
        Assert.Equal((ulong)(5 * PageSize + 2 * PageSize), image.Header.PagesLen);
        image.VerifyPages(files.Pages);
    }

    [Fact]
    public void Records_come_in_the_native_writers_order_with_files_between_descriptors_and_mappings()
    {
        byte[] meta = File.ReadAllBytes(WriteIncremental().Meta);
        var types = Records(meta).Select(r => r.Type).Distinct();
        Assert.Equal([RecordType.Proc, RecordType.Thread, RecordType.Sigact, RecordType.Misc, RecordType.Fd, RecordType.File, RecordType.Vma], types);
        int file = Payload(meta, RecordType.File);
        Assert.Equal(FileSize + "/var/lib/app/data.db".Length, Records(meta).First(r => r.Type == RecordType.File).Length);
        // us_rec_file: size @16, pages_off @24, crc @32, path_len @36, flags @40, path after 48
        Assert.Equal(6000ul, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(file + 16)));
        Assert.Equal((uint)"/var/lib/app/data.db".Length, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(file + 36)));
        Assert.Equal("/var/lib/app/data.db"u8.ToArray(), meta.AsSpan(file + FileSize, "/var/lib/app/data.db".Length).ToArray());
    }

    [Fact]
    public void A_hole_run_is_refused_in_a_full_image_and_with_data()
    {
        byte[] meta = File.ReadAllBytes(WriteIncremental().Meta);
        int hole = HoleRunOffset(meta);

        byte[] full = WithU32(WithU32(meta, 16, (uint)ImageKind.Full), 56, 0);
        Assert.Contains("is a hole run, which only an incremental image may have", Refused(full).Message);
        Assert.Contains("a hole has no data and all three must be 0", Refused(WithU64(meta, hole + 16, PageSize)).Message);
        Assert.Contains("a hole has no data and all three must be 0", Refused(WithU64(meta, hole + 24, PageSize)).Message);
        Assert.Contains("a hole has no data and all three must be 0", Refused(WithU32(meta, hole + 32, 0x1234)).Message);
        Assert.Contains("has unknown flags 0x4", Refused(WithU32(meta, hole + 36, 4)).Message);
        Assert.Contains("is both a hole and compressed (flags 0x3)", Refused(WithU32(meta, hole + 36, 3)).Message);
    }

    [Fact]
    public void Unknown_mapping_flags_are_refused_but_complete_is_allowed_in_a_full_image()
    {
        byte[] meta = File.ReadAllBytes(WriteRichFull());
        int vma = Payload(meta, RecordType.Vma);
        Assert.Contains("unknown flags 0x8", Refused(WithU32(meta, vma + 20, 8)).Message);
        Assert.Equal(VmaFlags.Complete | VmaFlags.Shared, ProcessImage.Parse(WithU32(meta, vma + 20, 3)).Vmas[0].Flags);
    }

    [Fact]
    public void Bad_file_records_are_refused()
    {
        byte[] meta = File.ReadAllBytes(WriteIncremental().Meta);
        int file = Payload(meta, RecordType.File);
        Assert.Contains("has pages_off 100, which is not a multiple of 4096", Refused(WithU64(meta, file + 24, 100)).Message);
        Assert.Contains("(file /var/lib/app/data.db) has unknown flags 0x2", Refused(WithU32(meta, file + 40, 2)).Message);
        Assert.Contains("(file /var/lib/app/data.db) has a nonzero reserved field", Refused(WithU32(meta, file + 44, 1)).Message);
        Assert.Contains("past any file's end", Refused(WithU64(meta, file + 16, ulong.MaxValue)).Message);
        Assert.Contains("its struct and 200-byte path need 248", Refused(WithU32(meta, file + 36, 200)).Message);
    }

    [Fact]
    public void Two_records_for_one_file_are_refused()
    {
        using var writer = new ProcessImageWriter(_dir.File("d.meta"), _dir.File("d.pages"));
        FileRecord a = writer.AppendFile(1, 2, "/same", [1, 2, 3]);
        FileRecord b = writer.AppendFile(1, 3, "/same", [4]);
        var image = Image(2, 1, ImageKind.Full, 0, []) with { Files = [a, b] };
        Assert.Contains("repeats the file /same", Assert.Throws<ArgumentException>(() => writer.Finish(image)).Message);
        var empty = Image(2, 1, ImageKind.Full, 0, []) with { Files = [a with { Path = "" }] };
        Assert.Contains("has an empty path", Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(empty with { Header = empty.Header with { PagesLen = 4096 } })).Message);
    }

    [Fact]
    public void VerifyPages_checks_file_contents()
    {
        ImageFiles files = WriteIncremental();
        ProcessImage image = ProcessImage.ReadMeta(files.Meta);
        byte[] pages = File.ReadAllBytes(files.Pages);
        byte[] damaged = (byte[])pages.Clone();
        damaged[(int)image.Files[0].PagesOff + 5999] ^= 1;
        File.WriteAllBytes(files.Pages, damaged);
        var e = Assert.Throws<ImageFormatException>(() => image.VerifyPages(files.Pages));
        AssertOneLine(e.Message);
        Assert.Contains("contents of file /var/lib/app/data.db (6000 bytes at offset 20480) checksum mismatch", e.Message);

        // A byte of the padding after it is not part of the file.
        damaged = (byte[])pages.Clone();
        damaged[(int)image.Files[0].PagesOff + 6000] ^= 1;
        File.WriteAllBytes(files.Pages, damaged);
        image.VerifyPages(files.Pages);

        // Contents that reach past the end of .pages.
        var beyond = image with { Files = [image.Files[0] with { PagesOff = 8 * PageSize }] };
        File.WriteAllBytes(files.Pages, pages);
        Assert.Contains("reaches past the end of the file", Assert.Throws<ImageFormatException>(() => beyond.VerifyPages(files.Pages)).Message);
    }

    [Fact]
    public void The_streaming_writer_matches_whole_runs_and_refuses_interleaving()
    {
        using var whole = new ProcessImageWriter(_dir.File("w.meta"), _dir.File("w.pages"));
        using var streamed = new ProcessImageWriter(_dir.File("s.meta"), _dir.File("s.pages"));
        byte[] data = [.. MemoryImages.Page(A, 1), .. MemoryImages.Page(A + P, 1), .. MemoryImages.Page(A + 2 * P, 1)];
        PageRun expected = whole.AppendRun(A, data);

        ProcessImageWriter.PageRunBuilder run = streamed.BeginRun(A);
        run.Append(data.AsSpan(0, PageSize));
        run.Append([]);
        Assert.Throws<InvalidOperationException>(() => streamed.BeginFile());
        Assert.Throws<ArgumentException>(() => run.Append(new byte[100]));
        run.Append(data.AsSpan(PageSize));
        Assert.Equal(A + 3 * P, run.NextAddr);
        Assert.Equal(expected, run.End());
        Assert.Throws<InvalidOperationException>(() => run.Append(new byte[PageSize]));
        Assert.Throws<InvalidOperationException>(() => streamed.BeginRun(A).End()); // a run has pages
    }

    [Fact]
    public void Inspect_shows_holes_complete_mappings_files_and_member_kinds()
    {
        var store = new CheckpointStore(_dir.File("state"));
        CommitFull(store, 5);
        (string id, long seq, string dir) = store.CreateStaging("web");
        Assert.Equal(6, seq);
        ImageFiles written = WriteIncremental("x");
        File.Move(written.Meta, Path.Combine(dir, "2.meta"));
        File.Move(written.Pages, Path.Combine(dir, "2.pages"));
        store.Commit("web", id, CheckpointManifest.Create("web", seq, DateTime.UtcNow, [ManifestMember.FromFiles(dir, 2, 1, "db", 0)]));

        using var doc = JsonDocument.Parse(store.InspectJson("web", id));
        JsonElement member = doc.RootElement.GetProperty("members")[0];
        Assert.Equal("incremental", doc.RootElement.GetProperty("kind").GetString());
        Assert.Equal(("incremental", 5), (member.GetProperty("kind").GetString(), member.GetProperty("baseSeq").GetInt32()));
        JsonElement vmas = member.GetProperty("vmas");
        Assert.False(vmas[0].GetProperty("complete").GetBoolean());
        Assert.True(vmas[1].GetProperty("complete").GetBoolean());
        Assert.Equal((3, 3), (vmas[0].GetProperty("pages").GetInt32(), vmas[0].GetProperty("holePages").GetInt32()));
        Assert.Equal([false, true, false], vmas[0].GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("hole").GetBoolean()));
        JsonElement totals = member.GetProperty("pageTotals");
        Assert.Equal((3, 5, 1, 3, 6000), (totals.GetProperty("runs").GetInt32(), totals.GetProperty("pages").GetInt32(),
            totals.GetProperty("holeRuns").GetInt32(), totals.GetProperty("holePages").GetInt32(), totals.GetProperty("fileBytes").GetInt32()));
        Assert.Equal(["/var/lib/app/data.db", "/var/lib/app/empty"], member.GetProperty("files").EnumerateArray().Select(f => f.GetProperty("path").GetString()));
    }

    private string WriteRichFull()
    {
        WriteRich(_dir.Path, vpid: 3);
        return _dir.File("3.meta");
    }

    /// <summary>Commits full checkpoints 1..<paramref name="count"/> of group web with process 2.</summary>
    private static void CommitFull(CheckpointStore store, int count)
    {
        for (int i = 0; i < count; i++)
        {
            (string id, long seq, string dir) = store.CreateStaging("web");
            WriteRich(dir, 2, (ulong)seq);
            store.Commit("web", id, CheckpointManifest.Create("web", seq, DateTime.UtcNow, [ManifestMember.FromFiles(dir, 2, 1, "db", 0)]));
        }
    }

    private static int HoleRunOffset(byte[] meta)
    {
        int vma = Payload(meta, RecordType.Vma);
        int runs = vma + VmaSize;
        for (int i = 0; ; i++)
        {
            int run = runs + i * PageRunSize;
            if (BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(run + 36)) == (uint)PageRunFlags.Hole)
            {
                return run;
            }
        }
    }
}
