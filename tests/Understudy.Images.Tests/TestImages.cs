using System.Buffers.Binary;
using static Understudy.Images.ImageLayout;

namespace Understudy.Images.Tests;

/// <summary>Builds valid images and edits their bytes for the corruption tests.</summary>
internal static class TestImages
{
    public const ulong HeapStart = 0x5555_5555_4000;
    public const ulong StackStart = 0x7ffd_0000_0000;

    /// <summary>
    /// Writes &lt;vpid&gt;.meta and &lt;vpid&gt;.pages into <paramref name="dir"/>: every VMA kind,
    /// every FD kind, several page runs of pseudo-random data, a path that is not UTF-8, timers of
    /// every kind, IPC objects of every kind (a segment's contents in .pages) and memory advice.
    /// </summary>
    public static ProcessImage WriteRich(string dir, uint vpid = 2, ulong seq = 1, ImageKind kind = ImageKind.Full, uint baseSeq = 0, int seed = 1)
    {
        var random = new Random(seed);
        using var writer = new ProcessImageWriter(Path.Combine(dir, $"{vpid}.meta"), Path.Combine(dir, $"{vpid}.pages"));
        PageRun Run(ulong addr, int npages)
        {
            var data = new byte[npages * PageSize];
            random.NextBytes(data);
            return writer.AppendRun(addr, data);
        }

        VmaRecord[] vmas =
        [
            Vma(0x40_0000, 0x40_2000, VmaProt.Read | VmaProt.Exec, VmaKind.File, "/usr/bin/app", [], inode: 100),
            Vma(0x40_2000, 0x40_4000, VmaProt.Read | VmaProt.Write, VmaKind.File, "/usr/bin/app", [Run(0x40_3000, 1)], inode: 100),
            Vma(HeapStart, HeapStart + 0x10_000, VmaProt.Read | VmaProt.Write, VmaKind.Heap, "[heap]",
                [Run(HeapStart, 2), Run(HeapStart + 0x4000, 3), Run(HeapStart + 0xF000, 1)]),
            Vma(0x7f00_0000_0000, 0x7f00_0010_0000, VmaProt.Read | VmaProt.Write, VmaKind.Anon, "", [Run(0x7f00_0008_0000, 4)], VmaFlags.NoReserve),
            Vma(0x7f00_0020_0000, 0x7f00_0020_4000, VmaProt.Read | VmaProt.Write, VmaKind.Shmem, "/memfd:shared (deleted)", [], VmaFlags.Shared),
            Vma(0x7f00_0030_0000, 0x7f00_0030_1000, VmaProt.Read, VmaKind.File, "/data/caf\u00e9/\udcff\udcfe.bin", []),
            Vma(StackStart, StackStart + 0x21_000, VmaProt.Read | VmaProt.Write, VmaKind.Stack, "[stack]", [Run(StackStart + 0x1F_000, 2)]),
            Vma(0x7ffd_1000_0000, 0x7ffd_1000_4000, VmaProt.Read, VmaKind.Vvar, "[vvar]", []),
            Vma(0x7ffd_1000_4000, 0x7ffd_1000_5000, VmaProt.Read, VmaKind.VvarVclock, "[vvar_vclock]", []),
            Vma(0x7ffd_1000_5000, 0x7ffd_1000_7000, VmaProt.Read | VmaProt.Exec, VmaKind.Vdso, "[vdso]", [Run(0x7ffd_1000_5000, 2)]),
        ];
        var segment = new byte[5000];
        random.NextBytes(segment);
        IpcRecord shm = writer.AppendSegment(Ipc(IpcKind.Shm, id: 32768, key: 0x1234, mode: Oct("1640"), size: 0), segment);
        return writer.Finish(Image(vpid, seq, kind, baseSeq, vmas) with
        {
            Timers =
            [
                new TimerRecord(0, 1, TimerRecord.SigevSignal, 35, 1111, 0, 50_000_000, 20_000_000),
                new TimerRecord(2, 0, TimerRecord.SigevThreadId, 36, 0x7f00_0000_1000, (int)vpid + 2, 0, 3_600_000_000_000),
                new TimerRecord(5, 7, TimerRecord.SigevNone, 0, 0, 0, 0, 0),
            ],
            Ipc =
            [
                shm,
                Ipc(IpcKind.Sem, id: 1, key: -7, mode: Oct("600"), size: 3) with { SemValues = [3, 0, 32767] },
                Ipc(IpcKind.Msg, id: 65538, key: 0, mode: Oct("660"), size: 16384) with
                {
                    Messages = [new IpcMessage(1, "first"u8.ToArray()), new IpcMessage(9, [])],
                },
                Ipc(IpcKind.Mqueue, id: 0, key: 0, mode: Oct("640"), size: 10) with
                {
                    MsgSize = 8192, Name = "jobs-\u00e9", Messages = [new IpcMessage(7, "urgent"u8.ToArray()), new IpcMessage(0, [1, 2, 3])],
                },
            ],
            MemoryAdvice =
            [
                new MemoryAdvice(HeapStart, HeapStart + 0x4000, MemoryAdviceFlags.DontFork | MemoryAdviceFlags.DontDump),
                new MemoryAdvice(0x7f00_0000_0000, 0x7f00_0010_0000, MemoryAdviceFlags.Locked | MemoryAdviceFlags.LockOnFault | MemoryAdviceFlags.HugePage),
            ],
        });
    }

    public static IpcRecord Ipc(IpcKind kind, int id, int key, uint mode, ulong size) =>
        new(kind, id, key, mode, 1000, 1001, size, 0, 0, 0, "", [], []);

    /// <summary>A complete image whose VMAs are given; the rest is fixed and covers every FD kind.</summary>
    public static ProcessImage Image(uint vpid, ulong seq, ImageKind kind, uint baseSeq, IReadOnlyList<VmaRecord> vmas) => new(
        new MetaHeader(kind, vpid, seq, baseSeq),
        new ProcRecord(vpid, 1, vpid, 1, 1000, 1000, 1, Oct("022"), 0x7f00_1234_0000, 0x7f00_1234_8000,
            new MmLayout(0x40_0000, 0x40_2000, 0x40_2000, 0x40_4000, HeapStart, HeapStart + 0x10_000, StackStart + 0x20_000,
                StackStart + 0x20_100, StackStart + 0x20_200, StackStart + 0x20_200, StackStart + 0x20_400),
            "/usr/bin/app", "/home/\udc80user", "app", [6, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        vmas,
        [new ThreadRecord(vpid, false, 0x7f00_0000_1000, "app"),
         new ThreadRecord(vpid + 1, true, 0x7f00_0000_2000, "us-ckpt"),
         new ThreadRecord(vpid + 2, false, 0x7f00_0000_3000, "worker-\u00e9\u00e9\u00e9\u00e9")],
        [Fd(0, FdKind.Chr, "/dev/null", aux: new FdAux(0x103)),
         Fd(1, FdKind.Pipe, "", data: "queued"u8.ToArray(), aux: new FdAux(0)),
         Fd(2, FdKind.Fifo, "/run/app.fifo", aux: new FdAux(1)),
         Fd(3, FdKind.File, "/var/log/app.log", pos: 123_456_789, openFlags: 0x441, fdFlags: FdRecord.CloseOnExec),
         Fd(4, FdKind.Dir, "/var/lib/app", openFlags: 0x10000),
         Fd(5, FdKind.UnixStream, "/run/app.sock", data: [1, 2, 3], aux: new FdAux(777, 0)),
         Fd(6, FdKind.UnixStream, "/run/listen.sock", aux: new FdAux(0, 1)),
         Fd(7, FdKind.UnixDgram, "", data: QueuedRecords.Encode([[9], []]), aux: new FdAux(778)),
         Fd(8, FdKind.Eventfd, "anon_inode:[eventfd]", aux: new FdAux(5, 0x800)),
         Fd(9, FdKind.Timerfd, "anon_inode:[timerfd]", aux: new FdAux(1, 1_000_000_000, 250_000_000)),
         Fd(10, FdKind.Epoll, "anon_inode:[eventpoll]",
            data: EpollTarget.Encode([new EpollTarget(5, 1, 0xdead_beef), new EpollTarget(8, 0x80000001, 8)])),
         Fd(11, FdKind.Signalfd, "anon_inode:[signalfd]", aux: new FdAux(1UL << 16)),
         Fd(12, FdKind.Coordinator, "", fdFlags: FdRecord.CloseOnExec),
         Fd(13, FdKind.Tcp, "127.0.0.1:8080", aux: new FdAux(0, 1)),
         Fd(14, FdKind.Udp, "[0:0:0:0:0:0:0:1]:5353", aux: new FdAux(0, 0, 2)),
         Fd(15, FdKind.Memfd, "/memfd:cache (deleted)", pos: 321, aux: new FdAux(0x3, 0, 0, 15)),
         Fd(16, FdKind.PtyMaster, "/dev/ptmx", aux: new FdAux(4),
            data: PtyState.Encode(new PtyState(new byte[44], 24, 80, 0, 0, PtyState.Packet, 0, 0), "line\n"u8, "out\r\n"u8)),
         Fd(17, FdKind.PtySlave, "/dev/pts/4", aux: new FdAux(4, 1, 4242)),
         Fd(18, FdKind.Tcp, "[0:0:0:0:0:0:0:1]:443", aux: new FdAux(0, 0, 1), data: new TcpConnection(TcpConnection.Inet6Family, 8,
             443, 51000, [.. new byte[15], 1], [.. new byte[15], 1], 7, 9, 3, 1, 2, 1400, 99, 7, 7, 7, 5, 1000, 2000, 1000, 7,
             1 << 16, 1 << 17, TcpFlags.Repair | TcpFlags.FinReceived | TcpFlags.KeepAlive).Encode("hi"u8, "abc"u8)),
         Fd(19, FdKind.UnixSeqpacket, "/run/records.sock", data: QueuedRecords.Encode([[1, 2], [], [3]]), aux: new FdAux(779)),
         Fd(20, FdKind.Mqueue, "/jobs", openFlags: 0x800, fdFlags: FdRecord.CloseOnExec)],
        [new SigactionEntry(2, 0x40_1000, 0x0400_0000, 0x40_1100, 0),
         new SigactionEntry(15, 1, 0, 0, 0),
         new SigactionEntry(17, 0x40_1200, 0x0400_0004, 0x40_1100, 1UL << 1)],
        new MiscRecord(
            [new ItimerValue(1, 500_000, 0, 250_000), new ItimerValue(0, 0, 0, 0), new ItimerValue(-1, 0, 2, 3)],
            Enumerable.Range(0, RlimitCount).Select(i => i % 3 == 0 ? ulong.MaxValue : (ulong)i * 1024).ToArray(),
            1UL << 9));

    public static VmaRecord Vma(ulong start, ulong end, VmaProt prot, VmaKind kind, string path, IReadOnlyList<PageRun> runs,
        VmaFlags flags = VmaFlags.None, ulong inode = 0) =>
        new(start, end, prot, flags, kind, 0, inode == 0 ? 0UL : 0x803, inode, kind == VmaKind.Shmem ? end - start : 0, runs, path);

    public static FdRecord Fd(int fd, FdKind kind, string path, byte[]? data = null, FdAux aux = default,
        ulong pos = 0, uint openFlags = 2, uint fdFlags = 0) =>
        new(fd, fdFlags, kind, openFlags, pos, 0x10, (ulong)(1000 + fd), Oct("600"), path, aux, data ?? []);

    /// <summary>The smallest valid image: PROC, one THREAD, SIGACT, MISC; no pages.</summary>
    public static byte[] Minimal() => ProcessImageWriter.EncodeMeta(new ProcessImage(
        new MetaHeader(ImageKind.Full, 3, 1),
        new ProcRecord(3, 1, 3, 1, 0, 0, 0, Oct("022"), 0, 0, MmLayout.FromArray(new ulong[MmFieldCount]), "/bin/x", "/tmp", "x", []),
        [],
        [new ThreadRecord(3, false, 0, "x")],
        [],
        [],
        new MiscRecord([default, default, default], new ulong[RlimitCount], 0)));

    /// <summary>C's octal literals (modes, umasks); C# has none.</summary>
    public static uint Oct(string digits) => Convert.ToUInt32(digits, 8);

    /// <summary>Recomputes both checksums, so that a test reaches the check behind them.</summary>
    public static byte[] Reseal(byte[] meta)
    {
        byte[] copy = (byte[])meta.Clone();
        if (copy.Length >= HeaderSize)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(40), Crc32C.Compute(copy.AsSpan(HeaderSize)));
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(60), Crc32C.Compute(copy.AsSpan(0, 60)));
        }
        return copy;
    }

    /// <summary>Where each record of a valid image starts: its type, header offset and payload length.</summary>
    public static List<(RecordType Type, int Offset, int Length)> Records(byte[] meta)
    {
        var records = new List<(RecordType, int, int)>();
        for (int at = HeaderSize; at < meta.Length;)
        {
            var type = (RecordType)BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(at));
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(at + 4));
            records.Add((type, at, len));
            at += RecordHeaderSize + (int)Align(len);
        }
        return records;
    }

    /// <summary>Offset of the payload of the first record of <paramref name="type"/>.</summary>
    public static int Payload(byte[] meta, RecordType type) => Records(meta).First(r => r.Type == type).Offset + RecordHeaderSize;

    public static byte[] WithU32(byte[] meta, int offset, uint value, bool reseal = true)
    {
        byte[] copy = (byte[])meta.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return reseal ? Reseal(copy) : copy;
    }

    public static byte[] WithU64(byte[] meta, int offset, ulong value, bool reseal = true)
    {
        byte[] copy = (byte[])meta.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy.AsSpan(offset), value);
        return reseal ? Reseal(copy) : copy;
    }

    /// <summary>Parses and returns the ImageFormatException, failing on success or on any other exception.</summary>
    public static ImageFormatException Refused(byte[] meta)
    {
        var e = Assert.Throws<ImageFormatException>(() => ProcessImage.Parse(meta));
        AssertOneLine(e.Message);
        return e;
    }

    public static void AssertOneLine(string message)
    {
        Assert.False(string.IsNullOrWhiteSpace(message));
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain('\r', message);
    }
}
