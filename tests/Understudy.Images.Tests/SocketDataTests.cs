using static Understudy.Images.ImageLayout;
using static Understudy.Images.Tests.TestImages;

namespace Understudy.Images.Tests;

/// <summary>
/// The data of socket records (format version 3): a Unix datagram or seqpacket socket's queued
/// records, framed by their lengths, and a connected TCP socket's state and queues. A reader
/// refuses data that is not exactly what it announces, since a restore writes it back.
/// </summary>
public class SocketDataTests
{
    private static readonly TcpConnection Conn = new(TcpConnection.InetFamily, 1, 8080, 40000,
        [127, 0, 0, 1, .. new byte[12]], [127, 0, 0, 1, .. new byte[12]], 100, 200, 5, 2, 4, 65483, 7, 7, 7, 7,
        1, 65536, 65536, 65536, 200, 1 << 18, 1 << 19, TcpFlags.Repair);

    /// <summary>An image with a TCP connection at fd 3 and a seqpacket socket at fd 4.</summary>
    private static byte[] Meta(byte[]? tcpData = null, byte[]? records = null, FdKind recordKind = FdKind.UnixSeqpacket)
    {
        ProcessImage minimal = ProcessImage.Parse(Minimal());
        return ProcessImageWriter.EncodeMeta(minimal with
        {
            Fds =
            [
                Fd(3, FdKind.Tcp, "127.0.0.1:8080", tcpData ?? Conn.Encode("ping"u8, "pong!"u8)),
                Fd(4, recordKind, "", records ?? QueuedRecords.Encode(["ab"u8.ToArray(), [], "xyz"u8.ToArray()])),
            ],
        });
    }

    private static int DataOffset(byte[] meta, int fdIndex)
    {
        var fd = Records(meta).Where(r => r.Type == RecordType.Fd).ElementAt(fdIndex);
        int payload = fd.Offset + RecordHeaderSize;
        uint pathLen = BitConverter.ToUInt32(meta, payload + 44);
        return payload + FdSize + (int)pathLen;
    }

    [Fact]
    public void Queues_round_trip_through_the_writer()
    {
        byte[] meta = Meta();
        ProcessImage image = ProcessImage.Parse(meta);

        TcpConnection c = image.Fds[0].Tcp!;
        Assert.Equal(Conn with { LocalAddress = c.LocalAddress, RemoteAddress = c.RemoteAddress }, c);
        Assert.Equal("ping"u8.ToArray(), c.ReceiveQueue(image.Fds[0].Data).ToArray());
        Assert.Equal("pong!"u8.ToArray(), c.SendQueue(image.Fds[0].Data).ToArray());
        Assert.Equal(["ab"u8.ToArray(), [], "xyz"u8.ToArray()], image.Fds[1].Records);
        Assert.Equal(meta, ProcessImageWriter.EncodeMeta(image));
    }

    [Fact]
    public void Datagram_queues_must_be_framed_exactly()
    {
        foreach (FdKind kind in new[] { FdKind.UnixDgram, FdKind.UnixSeqpacket })
        {
            Assert.Single(ProcessImage.Parse(Meta(records: QueuedRecords.Encode([[]]), recordKind: kind)).Fds[1].Records);
            byte[] three = Meta(records: QueuedRecords.Encode([[1, 2, 3]]), recordKind: kind);
            Assert.Contains("2 stray bytes", Refused(WithU32(three, DataOffset(three, 1), 1)).Message);
            byte[] one = Meta(records: QueuedRecords.Encode([[7]]), recordKind: kind);
            Assert.Contains("queued record of 9 bytes where only 1 remain", Refused(WithU32(one, DataOffset(one, 1), 9)).Message);
        }
    }

    [Fact]
    public void A_record_length_past_the_data_is_refused_after_a_reseal()
    {
        byte[] meta = Meta();
        Assert.Contains("queued record of", Refused(WithU32(meta, DataOffset(meta, 1), 0x7fffffff)).Message);
    }

    [Fact]
    public void Tcp_state_must_announce_exactly_its_queues()
    {
        byte[] meta = Meta();
        int state = DataOffset(meta, 0);
        Assert.Contains("announces 4 received, 6 to send", Refused(WithU32(meta, state + 48, 6)).Message);
        Assert.Contains("announces 5 received", Refused(WithU32(meta, state + 56, 5)).Message);
        Assert.Contains("(6 unsent)", Refused(WithU32(meta, state + 52, 6)).Message);
        Assert.Contains("address family 7", Refused(WithU32(meta, state, 0x10007)).Message);
        Assert.Contains("unknown TCP connection flags 0x21", Refused(WithU32(meta, state + 100, 0x21)).Message);
        Assert.Contains("taken without repair", Refused(WithU32(meta, state + 100, 0)).Message);
        int fd = Records(meta).First(r => r.Type == RecordType.Fd).Offset + RecordHeaderSize;
        Assert.Contains("listening TCP socket", Refused(WithU64(meta, fd + 56, 1)).Message);

        // a stream socket's 103 bytes, read as a TCP connection's
        byte[] stream = Meta(records: new byte[TcpConnSize - 1], recordKind: FdKind.UnixStream);
        int second = Records(stream).Where(r => r.Type == RecordType.Fd).ElementAt(1).Offset + RecordHeaderSize;
        Assert.Contains("less than the 104", Refused(WithU32(stream, second + 8, (uint)FdKind.Tcp)).Message);
    }

    [Fact]
    public void A_connection_taken_without_repair_keeps_its_receive_queue()
    {
        var dropped = Conn with { Flags = TcpFlags.None, SendSeq = 0, RecvSeq = 0, SendLength = 0, UnsentLength = 0, RecvLength = 3 };
        TcpConnection c = ProcessImage.Parse(Meta(tcpData: dropped.Encode("end"u8, []))).Fds[0].Tcp!;
        Assert.False(c.Repaired);
        Assert.Equal(3u, c.RecvLength);
    }

    [Fact]
    public void Kinds_without_a_number_are_refused()
    {
        byte[] meta = Meta();
        int fd = Payload(meta, RecordType.Fd);
        foreach (uint kind in new uint[] { 0, 100 })
        {
            Assert.Contains($"unknown kind {kind}", Refused(WithU32(meta, fd + 8, kind)).Message);
        }
    }
}
