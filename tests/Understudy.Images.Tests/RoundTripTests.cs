namespace Understudy.Images.Tests;

public class RoundTripTests
{
    [Fact]
    public void A_rich_image_reads_back_exactly_as_written()
    {
        using var dir = new TempDir();
        ProcessImage written = TestImages.WriteRich(dir.Path, vpid: 4, seq: 6, ImageKind.Incremental, baseSeq: 5);
        ProcessImage read = ProcessImage.ReadMeta(dir.File("4.meta"));

        Assert.Equal(written.Header, read.Header);
        Assert.Equal((ImageKind.Incremental, 4u, 6ul, 5u), (read.Header.Kind, read.Header.Vpid, read.Header.CheckpointSeq, read.Header.BaseSeq));
        Assert.Equal((ulong)new FileInfo(dir.File("4.pages")).Length, read.Header.PagesLen);
        Assert.Equal(1u + 10 + 3 + 21 + 1 + 1 + 3 + 4 + 1, read.Header.RecordCount); // PROC, VMAs, THREADs, FDs, SIGACT, MISC, TIMERs, IPC, MADVICE

        // Encoding is a function of every field, so equal bytes mean equal images.
        Assert.Equal(File.ReadAllBytes(dir.File("4.meta")), ProcessImageWriter.EncodeMeta(read));
        Assert.Equal(ProcessImageWriter.EncodeMeta(written), ProcessImageWriter.EncodeMeta(read));

        Assert.Equal("/home/\udc80user", read.Proc.Cwd);
        Assert.Equal("/data/caf\u00e9/\udcff\udcfe.bin", read.Vmas[5].Path);
        Assert.Equal(Enum.GetValues<VmaKind>().Order(), read.Vmas.Select(v => v.Kind).Distinct().Order());
        Assert.Equal(Enum.GetValues<FdKind>().Order(), read.Fds.Select(f => f.Kind).Distinct().Order());
        Assert.Equal(written.Vmas.SelectMany(v => v.Runs), read.Vmas.SelectMany(v => v.Runs));
        Assert.Equal(written.Fds.Select(f => (f.Fd, f.Kind, f.Path, f.Pos, f.Aux)), read.Fds.Select(f => (f.Fd, f.Kind, f.Path, f.Pos, f.Aux)));
        Assert.Equal("worker-\u00e9\u00e9\u00e9\u00e9", read.Threads[2].Comm);
        Assert.Equal(written.Sigactions, read.Sigactions);
        Assert.Equal(written.Misc.Itimers, read.Misc.Itimers);
        Assert.Equal((7, 15L), (read.RunCount, read.PageCount));
        Assert.Equal(written.Timers, read.Timers);
        Assert.Equal(written.MemoryAdvice, read.MemoryAdvice);
        Assert.Equal(Enum.GetValues<IpcKind>(), read.Ipc.Select(o => o.Kind));
        Assert.Equal(written.Ipc.Select(o => (o.Id, o.Key, o.Mode, o.Size, o.MsgSize, o.PagesOff, o.Crc, o.Name)),
            read.Ipc.Select(o => (o.Id, o.Key, o.Mode, o.Size, o.MsgSize, o.PagesOff, o.Crc, o.Name)));
        Assert.Equal([3, 0, 32767], read.Ipc[1].SemValues);
        Assert.Equal(["first", ""], read.Ipc[2].Messages.Select(m => System.Text.Encoding.ASCII.GetString(m.Text)));
        Assert.Equal([7L, 0L], read.Ipc[3].Messages.Select(m => m.Type));
        Assert.Equal((5000L, VmaFlags.NoReserve), (read.SharedMemoryBytes, read.Vmas[3].Flags));
        read.VerifyPages(dir.File("4.pages"));
    }

    [Fact]
    public void Image_files_are_created_0600()
    {
        using var dir = new TempDir();
        TestImages.WriteRich(dir.Path, vpid: 2);
        const UnixFileMode expected = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(expected, File.GetUnixFileMode(dir.File("2.meta")));
        Assert.Equal(expected, File.GetUnixFileMode(dir.File("2.pages")));
    }

    [Fact]
    public void Non_utf8_bytes_round_trip_through_strings()
    {
        var random = new Random(3);
        for (int i = 0; i < 500; i++)
        {
            var bytes = new byte[random.Next(0, 40)];
            random.NextBytes(bytes);
            Assert.Equal(bytes, PosixString.Encode(PosixString.Decode(bytes)));
        }
        Assert.Equal("caf\u00e9", PosixString.Decode("caf\u00e9"u8));
        Assert.Equal("\U0001F600", PosixString.Decode([0xF0, 0x9F, 0x98, 0x80]));
        Assert.Equal([0xF0, 0x9F, 0x98, 0x80], PosixString.Encode("\U0001F600"));
        Assert.Throws<System.Text.EncoderFallbackException>(() => PosixString.Encode("bad \ud800 surrogate"));
    }

    [Fact]
    public void Writer_refuses_what_the_reader_would_refuse()
    {
        using var dir = new TempDir();
        ProcessImage good = TestImages.WriteRich(dir.Path);

        var badKind = good with { Vmas = [good.Vmas[0] with { Kind = (VmaKind)99 }] };
        Assert.Contains("unknown kind 99", Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(badKind)).Message);

        var overlapping = good with { Vmas = [good.Vmas[1], good.Vmas[0]] };
        Assert.Contains("not above the previous VMA", Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(overlapping)).Message);

        var longComm = good with { Threads = [new ThreadRecord(2, false, 0, "a-name-of-17-byte")] };
        Assert.Contains("more than the 16", Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(longComm)).Message);

        using var writer = new ProcessImageWriter(dir.File("9.meta"), dir.File("9.pages"));
        Assert.Throws<ArgumentException>(() => writer.AppendRun(0x1001, new byte[4096]));
        Assert.Throws<ArgumentException>(() => writer.AppendRun(0x1000, new byte[100]));
        PageRun run = writer.AppendRun(0x1000, new byte[4096]);
        var outside = good with
        {
            Header = good.Header with { Vpid = 9 },
            Proc = good.Proc with { Vpid = 9 },
            Vmas = [TestImages.Vma(0x1000, 0x3000, VmaProt.Read, VmaKind.Anon, "", [run, PageRun.Raw(0x2000, 1, 4096, 0)])],
        };
        Assert.Contains("outside the 4096 bytes appended", Assert.Throws<ArgumentException>(() => writer.Finish(outside)).Message);
    }

    [Fact]
    public void Parse_of_written_bytes_equals_what_Finish_returned()
    {
        using var dir = new TempDir();
        ProcessImage finished = TestImages.WriteRich(dir.Path, vpid: 5);
        ProcessImage parsed = ProcessImage.Parse(File.ReadAllBytes(dir.File("5.meta")));
        Assert.Equal(finished.Header, parsed.Header);
        Assert.Equal(finished.PageCount, parsed.PageCount);
    }
}
