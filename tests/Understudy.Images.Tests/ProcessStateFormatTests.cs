using static Understudy.Images.ImageLayout;
using static Understudy.Images.Tests.TestImages;

namespace Understudy.Images.Tests;

/// <summary>
/// The records of format version 3 (us_image.h): TIMER, IPC, MADVICE, the mqueue descriptor and
/// MAP_NORESERVE. Each field rule the reader enforces is broken once, checksums recomputed, so
/// that it is the rule that refuses the image.
/// </summary>
public sealed class ProcessStateFormatTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly byte[] _meta;

    public ProcessStateFormatTests()
    {
        WriteRich(_dir.Path, vpid: 4);
        _meta = File.ReadAllBytes(_dir.File("4.meta"));
    }

    public void Dispose() => _dir.Dispose();

    private int Nth(RecordType type, int n) => Records(_meta).Where(r => r.Type == type).ElementAt(n).Offset + RecordHeaderSize;

    [Fact]
    public void Bad_timer_records_are_refused()
    {
        int tick = Nth(RecordType.Timer, 0), thread = Nth(RecordType.Timer, 1);
        Assert.Contains("(timer 0) has notify 2", Refused(WithU32(_meta, tick + 8, 2)).Message);
        Assert.Contains("a thread id goes with SIGEV_THREAD_ID, and only with it", Refused(WithU32(_meta, tick + 24, 9)).Message);
        Assert.Contains("a thread id goes with SIGEV_THREAD_ID, and only with it", Refused(WithU32(_meta, thread + 24, 0)).Message);
        Assert.Contains("has signal number 65", Refused(WithU32(_meta, tick + 12, 65)).Message);
        Assert.Contains("(timer 0) has a nonzero reserved field", Refused(WithU32(_meta, tick + 28, 1)).Message);
        Assert.Contains("repeats timer 0", Refused(WithU32(_meta, thread, 0)).Message);
        Assert.Contains("has a negative id", Refused(WithU32(_meta, tick, uint.MaxValue)).Message);
    }

    [Fact]
    public void Bad_ipc_records_are_refused()
    {
        int shm = Nth(RecordType.Ipc, 0), sem = Nth(RecordType.Ipc, 1), msg = Nth(RecordType.Ipc, 2), queue = Nth(RecordType.Ipc, 3);
        Assert.Contains("unknown IPC kind 5", Refused(WithU32(_meta, shm, 5)).Message);
        Assert.Contains("(SysV shared memory segment 32768 (key 4660)) has pages_off 100, which is not a multiple of 4096",
            Refused(WithU64(_meta, shm + 40, 100)).Message);
        Assert.Contains("past the end of the", Refused(WithU64(_meta, shm + 24, 1ul << 40)).Message);
        Assert.Contains("with bits a shm does not have", Refused(WithU32(_meta, shm + 12, Oct("4600"))).Message);
        Assert.Contains("with bits a sem does not have", Refused(WithU32(_meta, sem + 12, Oct("1600"))).Message);
        Assert.Contains("has 4 semaphores but 6 bytes of values", Refused(WithU64(_meta, sem + 24, 4)).Message);
        Assert.Contains("has 4611686018427387906 semaphores", Refused(WithU64(_meta, sem + 24, (1ul << 62) + 2)).Message);
        Assert.Contains("has semaphore 2 at 32768, above the largest value 32767", Refused(WithU32(_meta, sem + IpcSize + 4, 0x8000)).Message);
        Assert.Contains("message 0 has type or priority 0", Refused(WithU64(_meta, msg + IpcSize, 0)).Message);
        Assert.Contains("claims 1000 messages but has", Refused(WithU32(_meta, msg + 52, 1000)).Message);
        Assert.Contains("claims 3 messages but has 40 bytes of data", Refused(WithU32(_meta, msg + 52, 3)).Message);
        Assert.Contains("message 0 claims 30 bytes but only 24 remain", Refused(WithU32(_meta, msg + IpcSize + 8, 30)).Message);
        Assert.Contains("has fields that belong to another kind", Refused(WithU64(_meta, msg + 32, 8192)).Message);
        Assert.Contains("has fields that belong to another kind", Refused(WithU64(_meta, queue + 32, 0)).Message);
        Assert.Contains("message 0 has type or priority 32768", Refused(WithU64(_meta, queue + IpcSize, 32768)).Message);
        Assert.Contains("holds 2 messages, more than its mq_maxmsg 1", Refused(WithU64(_meta, queue + 24, 1)).Message);
        Assert.Contains("a POSIX queue a name without '/'", Refused(WithU32(_meta, queue + 4, 3)).Message);
    }

    [Fact]
    public void Two_objects_under_one_id_or_name_are_refused()
    {
        // The writer refuses what the reader would: it parses what it encodes.
        ProcessImage image = ProcessImage.Parse(_meta);
        IpcRecord shm = image.Ipc[0], queue = image.Ipc[3];
        Assert.Contains("repeats the SysV shared memory segment 32768",
            Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(image with { Ipc = [shm, shm with { Key = 7 }] })).Message);
        Assert.Contains("repeats the POSIX message queue /jobs",
            Assert.Throws<ArgumentException>(() => ProcessImageWriter.EncodeMeta(image with { Ipc = [queue, queue with { Messages = [] }] })).Message);
        // the same id in two kinds is two objects
        ProcessImage.Parse(ProcessImageWriter.EncodeMeta(image with { Ipc = [shm, image.Ipc[1] with { Id = shm.Id }] }));
    }

    [Fact]
    public void Bad_memory_advice_is_refused()
    {
        int advice = Nth(RecordType.Madvice, 0);
        int first = advice + MadviceHeaderSize, second = first + MadviceSize;
        Assert.Contains("has flags 0x80", Refused(WithU32(_meta, first + 16, 0x80)).Message);
        Assert.Contains("has flags 0x0", Refused(WithU32(_meta, first + 16, 0)).Message);
        Assert.Contains("lock-on-fault without locked", Refused(WithU32(_meta, second + 16, (uint)MemoryAdviceFlags.LockOnFault)).Message);
        Assert.Contains("is not a nonempty page-aligned range above the previous one", Refused(WithU64(_meta, first, 0x1234)).Message);
        Assert.Contains("is not a nonempty page-aligned range above the previous one", Refused(WithU64(_meta, second, HeapStart)).Message);
        Assert.Contains("which no VMA of the image holds", Refused(WithU64(_meta, second + 8, 0x7f00_0020_0000)).Message);
        Assert.Contains("but 3 ranges need", Refused(WithU32(_meta, advice, 3)).Message);
        Assert.Contains("range 0 (0x555555554000-0x555555558000) has a nonzero reserved field", Refused(WithU32(_meta, first + 20, 1)).Message);
    }

    [Fact]
    public void Noreserve_and_mqueue_descriptors_are_known_and_nothing_beyond()
    {
        ProcessImage image = ProcessImage.Parse(_meta);
        Assert.Contains(image.Vmas, v => v.Flags.HasFlag(VmaFlags.NoReserve));
        Assert.Contains(image.Fds, f => f.Kind == FdKind.Mqueue);
        int fd = Records(_meta).Where(r => r.Type == RecordType.Fd).Last().Offset + RecordHeaderSize;
        // Kind 20 and type 10 are not this build's.
        Assert.Contains("unknown kind 20", Refused(WithU32(_meta, fd + 8, 20)).Message);
        Assert.Contains("unknown type 10", Refused(WithU32(_meta, HeaderSize, 10)).Message);
    }
}
