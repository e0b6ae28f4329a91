namespace Understudy.Images.Tests;

/// <summary>The image TestVectors/make_vector.c wrote with the C structs of us_image.h.</summary>
public class NativeVectorTests
{
    private static readonly string MetaPath = Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector.meta");
    private static readonly string PagesPath = Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector.pages");

    [Fact]
    public void Reader_decodes_every_field_the_C_program_wrote()
    {
        ProcessImage image = ProcessImage.ReadMeta(MetaPath);

        Assert.Equal(new MetaHeader(ImageKind.Full, 7, 3, 0) with
        {
            RecordCount = 19, RecordsLen = 2512 - 64, PagesLen = 16384, RecordsCrc = image.Header.RecordsCrc, HeaderCrc = image.Header.HeaderCrc,
        }, image.Header);

        ProcRecord p = image.Proc;
        Assert.Equal((7u, 1u, 7u, 1u, 1000u, 1001u, 2u, TestImages.Oct("022")), (p.Vpid, p.Vppid, p.Vpgid, p.Vsid, p.Uid, p.Gid, p.ExecCount, p.Umask));
        Assert.Equal((0x7f0000001000ul, 0x7f0000002000ul), (p.Entry, p.EntryArg));
        Assert.Equal(Enumerable.Range(0, 11).Select(i => 0x400000ul + (ulong)i * 0x1000), p.Mm.ToArray());
        Assert.Equal(("/usr/bin/vector-app", "/srv/data", "vector-app"), (p.Exe, p.Cwd, p.Comm));
        Assert.Equal([6, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, .. new byte[16]], p.Auxv);

        Assert.Equal(4, image.Vmas.Count);
        VmaRecord heap = image.Vmas[0];
        Assert.Equal((0x555555554000ul, 0x555555558000ul, VmaProt.Read | VmaProt.Write, VmaFlags.None, VmaKind.Heap, "[heap]"),
            (heap.Start, heap.End, heap.Prot, heap.Flags, heap.Kind, heap.Path));
        Assert.Equal([(0x555555554000ul, 1ul, 0ul, 4096ul), (0x555555556000ul, 2ul, 4096ul, 8192ul)], heap.Runs.Select(r => (r.Addr, r.NPages, r.PagesOff, r.StoredLen)));
        Assert.All(image.Vmas.SelectMany(v => v.Runs), r => Assert.Equal(PageRunFlags.None, r.Flags));
        VmaRecord file = image.Vmas[1];
        Assert.Equal((VmaKind.File, VmaProt.Read | VmaProt.Exec, "/usr/lib/libvector.so.1", 0x1000ul, 0x803ul, 12345ul, 8192ul),
            (file.Kind, file.Prot, file.Path, file.FileOffset, file.Dev, file.Inode, file.ObjectSize));
        Assert.Equal(12288ul, Assert.Single(file.Runs).PagesOff);
        Assert.Equal((VmaKind.Shmem, VmaFlags.Shared, "/memfd:cache (deleted)", 0), (image.Vmas[2].Kind, image.Vmas[2].Flags, image.Vmas[2].Path, image.Vmas[2].Runs.Count));
        Assert.Equal((VmaKind.VvarVclock, "r--p"), (image.Vmas[3].Kind, ImageNames.Of(image.Vmas[3].Prot, image.Vmas[3].Flags)));

        Assert.Equal([(7u, false, 0x7f00000aa000ul, "vector-app"), (8u, true, 0x7f00000bb000ul, "us-ckpt")],
            image.Threads.Select(t => (t.Tid, t.IsCheckpointThread, t.FsBase, t.Comm)));

        Assert.Equal([0, 3, 4, 5, 6, 7, 8, 9, 10, 11], image.Fds.Select(f => f.Fd));
        FdRecord chr = image.Fds[0], log = image.Fds[1], pipe = image.Fds[2], epoll = image.Fds[3], sock = image.Fds[4], timer = image.Fds[5];
        Assert.Equal((FdKind.Chr, "/dev/null", 0x103ul, TestImages.Oct("20666")), (chr.Kind, chr.Path, chr.Aux.Rdev, chr.Mode));
        Assert.Equal((FdKind.File, 1u, 0x401u, 12345ul, "/srv/data/log.txt"), (log.Kind, log.FdFlags, log.OpenFlags, log.Pos, log.Path));
        Assert.Equal((FdKind.Pipe, true, "hello"), (pipe.Kind, pipe.Aux.IsReadEnd, System.Text.Encoding.ASCII.GetString(pipe.Data)));
        Assert.Equal([new EpollTarget(4, 1, 0x1122334455667788), new EpollTarget(6, 5, 42)], epoll.EpollTargets);
        Assert.Equal((FdKind.UnixStream, "/run/s.0", "abc", 4242ul, false), (sock.Kind, sock.Path, System.Text.Encoding.ASCII.GetString(sock.Data), sock.Aux.PeerInode, sock.Aux.IsListening));
        Assert.Equal((FdKind.Timerfd, 1ul, 1_000_000_000ul, 500_000_000ul), (timer.Kind, timer.Aux.ClockId, timer.Aux.IntervalNs, timer.Aux.NextExpiryNs));
        FdRecord ptm = image.Fds[6], memfd = image.Fds[7];
        Assert.Equal((FdKind.PtyMaster, "/dev/ptmx", 3ul, (7ul << 32) | 8), (ptm.Kind, ptm.Path, ptm.Aux.PtyIndex, ptm.Aux.OpenKey));
        PtyState pty = ptm.Pty!;
        Assert.Equal(Enumerable.Range(1, 44).Select(i => (byte)i), pty.Termios);
        Assert.Equal(((ushort)24, (ushort)80, (ushort)640, (ushort)480, PtyState.Packet, 3u, 2u),
            (pty.Rows, pty.Cols, pty.XPixels, pty.YPixels, pty.Flags, pty.ToSlaveLen, pty.ToMasterLen));
        Assert.Equal("ab\nxy", System.Text.Encoding.ASCII.GetString(ptm.Data.AsSpan(ImageLayout.PtyStateSize)));
        Assert.Equal(ptm.Data, PtyState.Encode(pty, "ab\n"u8, "xy"u8));
        Assert.Equal((FdKind.Memfd, "/memfd:cache (deleted)", 77ul, 0x13ul, 0ul), (memfd.Kind, memfd.Path, memfd.Pos, memfd.Aux.Seals, memfd.Aux.OpenKey));
        FdRecord tcp = image.Fds[8], seqpacket = image.Fds[9];
        Assert.Equal((FdKind.Tcp, "127.0.0.1:8080", false, true, false), (tcp.Kind, tcp.Path, tcp.Aux.IsListening, tcp.Aux.ReuseAddress, tcp.Aux.ReusePort));
        TcpConnection c = tcp.Tcp!;
        Assert.Equal((TcpConnection.InetFamily, (ushort)1, (ushort)8080, (ushort)40000), (c.Family, c.State, c.LocalPort, c.RemotePort));
        Assert.Equal([127, 0, 0, 1, .. new byte[12]], c.LocalAddress);
        Assert.Equal([127, 0, 0, 2, .. new byte[12]], c.RemoteAddress);
        Assert.Equal((0xfffffffeu, 1000u, 5u, 2u, 4u, 65483u, 0x12345678u), (c.SendSeq, c.RecvSeq, c.SendLength, c.UnsentLength, c.RecvLength, c.Mss, c.Timestamp));
        Assert.Equal(((byte)7, (byte)9, (ushort)7), (c.SendWindowScale, c.RecvWindowScale, c.Options));
        Assert.Equal((990u, 65536u, 131072u, 65000u, 1000u, 262144u, 524288u), (c.SndWl1, c.SndWnd, c.MaxWindow, c.RcvWnd, c.RcvWup, c.SendBuffer, c.RecvBuffer));
        Assert.Equal((TcpFlags.Repair | TcpFlags.NoDelay, true), (c.Flags, c.Repaired));
        Assert.Equal("ping"u8.ToArray(), c.ReceiveQueue(tcp.Data).ToArray());
        Assert.Equal("pong!"u8.ToArray(), c.SendQueue(tcp.Data).ToArray());
        Assert.Equal(tcp.Data, c.Encode("ping"u8, "pong!"u8));
        Assert.Equal((FdKind.UnixSeqpacket, 8889ul), (seqpacket.Kind, seqpacket.Aux.PeerInode));
        Assert.Equal(["ab"u8.ToArray(), []], seqpacket.Records);
        Assert.Equal(seqpacket.Data, QueuedRecords.Encode(seqpacket.Records));

        Assert.Equal([new SigactionEntry(2, 0x401000, 0x04000000, 0x401100, 0x1000), new SigactionEntry(15, 1, 0, 0, 0)], image.Sigactions);

        Assert.Equal([new ItimerValue(1, 500000, 0, 250000), default, default], image.Misc.Itimers);
        Assert.Equal(Enumerable.Range(0, 16).Select(i => i % 4 == 3 ? ulong.MaxValue : (ulong)i * 1000 + 1), image.Misc.RlimCur);
        Assert.Equal(1ul << 9, image.Misc.PendingShared);
    }

    [Fact]
    public void Writer_reproduces_the_C_bytes_exactly()
    {
        byte[] expected = File.ReadAllBytes(MetaPath);
        Assert.Equal(expected, ProcessImageWriter.EncodeMeta(ProcessImage.Parse(expected)));
    }

    [Fact]
    public void Page_runs_written_by_C_verify()
    {
        ProcessImage.ReadMeta(MetaPath).VerifyPages(PagesPath);
    }

    private static readonly string IncMetaPath = Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector-inc.meta");
    private static readonly string IncPagesPath = Path.Combine(AppContext.BaseDirectory, "TestVectors", "vector-inc.pages");

    [Fact]
    public void Reader_decodes_the_incremental_image_the_C_program_wrote()
    {
        ProcessImage image = ProcessImage.ReadMeta(IncMetaPath);

        Assert.Equal((ImageKind.Incremental, 7u, 4ul, 3u, 16u, 16384ul + 58),
            (image.Header.Kind, image.Header.Vpid, image.Header.CheckpointSeq, image.Header.BaseSeq, image.Header.RecordCount, image.Header.PagesLen));
        Assert.Equal([new TimerRecord(0, 1, TimerRecord.SigevSignal, 35, 1111, 0, 50_000_000, 20_000_000),
                      new TimerRecord(3, 0, TimerRecord.SigevThreadId, 36, 0x7f00000cc000, 7, 0, 3_600_000_000_000)], image.Timers);
        FdRecord queue = image.Fds[1];
        Assert.Equal((4, FdKind.Mqueue, "/jobs", 1u, 0x80802u), (queue.Fd, queue.Kind, queue.Path, queue.FdFlags, queue.OpenFlags));
        Assert.Equal([IpcKind.Shm, IpcKind.Sem, IpcKind.Msg, IpcKind.Mqueue], image.Ipc.Select(o => o.Kind));
        IpcRecord shm = image.Ipc[0], sem = image.Ipc[1], msg = image.Ipc[2], mqueue = image.Ipc[3];
        Assert.Equal((32769, 0x1234, TestImages.Oct("1640"), 1000u, 1001u, 100ul, 12288ul), (shm.Id, shm.Key, shm.Mode, shm.Uid, shm.Gid, shm.Size, shm.PagesOff));
        Assert.Equal((2, -5), (sem.Id, sem.Key));
        Assert.Equal([3, 0, 32767], sem.SemValues);
        Assert.Equal(16384ul, msg.Size);
        Assert.Equal(["first", "type nine"], msg.Messages.Select(m => System.Text.Encoding.ASCII.GetString(m.Text)));
        Assert.Equal([1L, 9L], msg.Messages.Select(m => m.Type));
        Assert.Equal(("jobs", 10ul, 8192ul, 7L, "urgent"), (mqueue.Name, mqueue.Size, mqueue.MsgSize, mqueue.Messages[0].Type,
            System.Text.Encoding.ASCII.GetString(mqueue.Messages[0].Text)));
        Assert.Equal([new MemoryAdvice(0x7f0000020000, 0x7f0000022000, MemoryAdviceFlags.DontFork | MemoryAdviceFlags.Locked)], image.MemoryAdvice);
        FileRecord file = Assert.Single(image.Files);
        Assert.Equal((0x803ul, 4242ul, 5000ul, 4096ul, "/srv/data/app.db"), (file.Dev, file.Inode, file.Size, file.PagesOff, file.Path));
        VmaRecord heap = image.Vmas[0];
        Assert.Equal((VmaKind.Heap, VmaFlags.None), (heap.Kind, heap.Flags));
        Assert.Equal([(0x555555555000ul, 1ul, 0ul, 4096ul, false), (0x555555556000ul, 2ul, 0ul, 0ul, true)],
            heap.Runs.Select(r => (r.Addr, r.NPages, r.PagesOff, r.StoredLen, r.IsHole)));
        Assert.Equal(0u, heap.Runs[1].Crc);
        Assert.Equal((VmaKind.Anon, VmaFlags.Complete | VmaFlags.NoReserve), (image.Vmas[1].Kind, image.Vmas[1].Flags));
        // The LZ4 block make_vector.c built by hand: 16 literals, one long match, 5 literals.
        PageRun lz4 = Assert.Single(image.Vmas[1].Runs);
        Assert.Equal((0x7f0000021000ul, 2ul, 16384ul, 58ul, PageRunFlags.Lz4, true), (lz4.Addr, lz4.NPages, lz4.PagesOff, lz4.StoredLen, lz4.Flags, lz4.IsCompressed));
        Assert.Equal((3L, 2L, 1, 4096L + 58), (image.PageCount, image.HolePageCount, image.CompressedRunCount, image.StoredPageBytes));
        image.VerifyPages(IncPagesPath);
        byte[] pattern = "understudy-lz4!\0"u8.ToArray();
        Assert.Equal(Enumerable.Range(0, 8192).Select(i => pattern[i % 16]), PageRunReader.ReadPages(IncPagesPath, lz4));
        Assert.Equal(File.ReadAllBytes(IncMetaPath), ProcessImageWriter.EncodeMeta(image));
    }

    [Fact]
    public void The_C_increment_merges_into_the_C_base()
    {
        using var dir = new TempDir();
        var output = new ImageFiles(dir.File("7.meta"), dir.File("7.pages"));
        MergeResult result = ImageMerger.Merge(new ImageFiles(MetaPath, PagesPath), new ImageFiles(IncMetaPath, IncPagesPath), output);

        byte[] basePages = File.ReadAllBytes(PagesPath), incPages = File.ReadAllBytes(IncPagesPath), merged = File.ReadAllBytes(output.Pages);
        ProcessImage image = result.Image;
        Assert.Equal((ImageKind.Full, 4ul, 0u), (image.Header.Kind, image.Header.CheckpointSeq, image.Header.BaseSeq));
        // The increment has a compressed run, so the merged image is compressed too: the vector's
        // pages are patterns that LZ4 shrinks, so every run is an LZ4 block.
        Assert.All(image.Vmas.SelectMany(v => v.Runs), r => Assert.True(r.IsCompressed));
        // The heap: its first page unchanged from the base, the second written since; the rest gone.
        PageRun heap = Assert.Single(image.Vmas[0].Runs);
        Assert.Equal((0x555555554000ul, 2ul), (heap.Addr, heap.NPages));
        Assert.Equal([.. basePages.AsSpan(0, 4096), .. incPages.AsSpan(0, 4096)], PageRunReader.ReadPages(output.Pages, heap));
        // The base's file mapping, memfd and vvar_vclock are gone; the new mapping has the increment's two pages.
        Assert.Equal([0x555555554000ul, 0x7f0000020000ul], image.Vmas.Select(v => v.Start));
        PageRun fresh = Assert.Single(image.Vmas[1].Runs);
        Assert.Equal((0x7f0000021000ul, 2ul), (fresh.Addr, fresh.NPages));
        Assert.Equal(PageRunReader.ReadPages(IncPagesPath, ProcessImage.ReadMeta(IncMetaPath).Vmas[1].Runs[0]), PageRunReader.ReadPages(output.Pages, fresh));
        Assert.Equal(0ul, image.Files[0].PagesOff % 4096);
        Assert.Equal(incPages.AsSpan(4096, 5000).ToArray(), merged.AsSpan((int)image.Files[0].PagesOff, 5000).ToArray());
        Assert.Equal(new MergeStatistics(1, 3, 2, 3, 5000), result.Statistics);
        // The records of version 3 are the increment's; the segment's contents come along.
        ProcessImage inc = ProcessImage.ReadMeta(IncMetaPath);
        Assert.Equal(inc.Timers, image.Timers);
        Assert.Equal(inc.MemoryAdvice, image.MemoryAdvice);
        Assert.Equal(VmaFlags.NoReserve, image.Vmas[1].Flags);
        IpcRecord shm = image.Ipc[0];
        static string Flat(IpcRecord o) =>
            $"{o with { SemValues = [], Messages = [] }} [{string.Join(',', o.SemValues)}] [{string.Join(',', o.Messages.Select(m => $"{m.Type}:{Convert.ToHexString(m.Text)}"))}]";
        Assert.Equal(inc.Ipc.Skip(1).Select(Flat), image.Ipc.Skip(1).Select(Flat));
        Assert.Equal((0ul, 100ul), (shm.PagesOff % 4096, shm.Size));
        Assert.Equal(incPages.AsSpan(12288, 100).ToArray(), merged.AsSpan((int)shm.PagesOff, 100).ToArray());
        image.VerifyPages(output.Pages);
    }
}
