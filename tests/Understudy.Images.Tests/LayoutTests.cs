using System.Buffers.Binary;
using static Understudy.Images.ImageLayout;

namespace Understudy.Images.Tests;

/// <summary>
/// Sizes and offsets measured with gcc 12 on x86_64 (sizeof/offsetof over us_image.h; the
/// program and its output are in docs/image-format.md).
/// </summary>
public class LayoutTests
{
    [Fact]
    public void Struct_sizes_match_gcc()
    {
        Assert.Equal(64, HeaderSize);
        Assert.Equal(8, RecordHeaderSize);
        Assert.Equal(152, ProcSize);
        Assert.Equal(72, VmaSize);
        Assert.Equal(40, PageRunSize);
        Assert.Equal(32, ThreadSize);
        Assert.Equal(88, FdSize);
        Assert.Equal(16, EpollTargetSize);
        Assert.Equal(104, TcpConnSize);
        Assert.Equal(40, SigactionSize);
        Assert.Equal(8, SigactHeaderSize);
        Assert.Equal(232, MiscSize);
        Assert.Equal(48, FileSize);
        Assert.Equal(48, TimerSize);
        Assert.Equal(64, IpcSize);
        Assert.Equal(16, IpcMessageSize);
        Assert.Equal(8, MadviceHeaderSize);
        Assert.Equal(24, MadviceSize);
    }

    [Fact]
    public void Records_without_variable_data_have_exactly_the_struct_size()
    {
        byte[] meta = TestImages.Minimal();
        var records = TestImages.Records(meta);
        Assert.Equal(
            [(RecordType.Proc, ProcSize + "/bin/x".Length + "/tmp".Length + "x".Length), (RecordType.Thread, ThreadSize), (RecordType.Sigact, SigactHeaderSize), (RecordType.Misc, MiscSize)],
            records.Select(r => (r.Type, r.Length)));
        Assert.All(records, r => Assert.Equal(0, (r.Offset - HeaderSize) % RecordAlignment));
    }

    [Fact]
    public void Encoded_fields_sit_at_the_gcc_offsets()
    {
        using var dir = new TempDir();
        TestImages.WriteRich(dir.Path, vpid: 9, seq: 5);
        byte[] meta = File.ReadAllBytes(dir.File("9.meta"));

        // us_meta_header: vpid @44, checkpoint_seq @48, pages_len @32
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(44)));
        Assert.Equal(5ul, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(48)));
        Assert.Equal((ulong)new FileInfo(dir.File("9.pages")).Length, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(32)));

        // us_rec_proc: umask @28, mm @48, exe_len @136
        int proc = TestImages.Payload(meta, RecordType.Proc);
        Assert.Equal(TestImages.Oct("022"), BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(proc + 28)));
        Assert.Equal(0x40_0000ul, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(proc + 48)));
        Assert.Equal((uint)"/usr/bin/app".Length, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(proc + 136)));

        // us_rec_vma: kind @24, nruns @64, first us_page_run right after the 72-byte struct
        int vma = TestImages.Records(meta).Where(r => r.Type == RecordType.Vma).ElementAt(2).Offset + RecordHeaderSize;
        Assert.Equal((uint)VmaKind.Heap, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(vma + 24)));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(vma + 64)));
        Assert.Equal(TestImages.HeapStart, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(vma + VmaSize)));

        // us_rec_fd (fd 3, the log file): pos @16, path_len @44, aux @48, data_len @80, path after 88
        int fd = TestImages.Records(meta).Where(r => r.Type == RecordType.Fd).ElementAt(3).Offset + RecordHeaderSize;
        Assert.Equal(3, BinaryPrimitives.ReadInt32LittleEndian(meta.AsSpan(fd)));
        Assert.Equal(123_456_789ul, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(fd + 16)));
        Assert.Equal((uint)"/var/log/app.log".Length, BinaryPrimitives.ReadUInt32LittleEndian(meta.AsSpan(fd + 44)));
        Assert.Equal("/var/log/app.log"u8.ToArray(), meta.AsSpan(fd + FdSize, "/var/log/app.log".Length).ToArray());

        // us_rec_misc: rlim_cur @96, pending_shared @224
        int misc = TestImages.Payload(meta, RecordType.Misc);
        Assert.Equal(ulong.MaxValue, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(misc + 96)));
        Assert.Equal(1ul << 9, BinaryPrimitives.ReadUInt64LittleEndian(meta.AsSpan(misc + 224)));
    }
}
