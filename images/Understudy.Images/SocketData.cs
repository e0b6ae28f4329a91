using System.Buffers.Binary;

namespace Understudy.Images;

/// <summary>
/// struct us_tcp_conn: the state of a connected TCP socket, at the start of its FD record's
/// data, followed by the receive queue and the send queue (docs/image-format.md).
/// </summary>
public sealed record TcpConnection(
    ushort Family,
    ushort State,
    ushort LocalPort,
    ushort RemotePort,
    byte[] LocalAddress,
    byte[] RemoteAddress,
    uint SendSeq,
    uint RecvSeq,
    uint SendLength,
    uint UnsentLength,
    uint RecvLength,
    uint Mss,
    uint Timestamp,
    byte SendWindowScale,
    byte RecvWindowScale,
    ushort Options,
    uint SndWl1,
    uint SndWnd,
    uint MaxWindow,
    uint RcvWnd,
    uint RcvWup,
    uint SendBuffer,
    uint RecvBuffer,
    TcpFlags Flags)
{
    public const ushort InetFamily = 2;
    public const ushort Inet6Family = 10;

    /// <summary>Whether the state was taken with TCP_REPAIR (else only addresses, state, buffers, flags and the receive queue).</summary>
    public bool Repaired => Flags.HasFlag(TcpFlags.Repair);

    /// <summary>The connection state and its queues as a record's data.</summary>
    public byte[] Encode(ReadOnlySpan<byte> receiveQueue, ReadOnlySpan<byte> sendQueue)
    {
        var d = new byte[ImageLayout.TcpConnSize + receiveQueue.Length + sendQueue.Length];
        Span<byte> s = d;
        BinaryPrimitives.WriteUInt16LittleEndian(s, Family);
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], State);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], LocalPort);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], RemotePort);
        LocalAddress.CopyTo(s[8..24]);
        RemoteAddress.CopyTo(s[24..40]);
        uint[] words = [SendSeq, RecvSeq, SendLength, UnsentLength, RecvLength, Mss, Timestamp];
        for (int i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[(40 + 4 * i)..], words[i]);
        }

        s[68] = SendWindowScale;
        s[69] = RecvWindowScale;
        BinaryPrimitives.WriteUInt16LittleEndian(s[70..], Options);
        words = [SndWl1, SndWnd, MaxWindow, RcvWnd, RcvWup, SendBuffer, RecvBuffer, (uint)Flags];
        for (int i = 0; i < words.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[(72 + 4 * i)..], words[i]);
        }

        receiveQueue.CopyTo(s[ImageLayout.TcpConnSize..]);
        sendQueue.CopyTo(s[(ImageLayout.TcpConnSize + receiveQueue.Length)..]);
        return d;
    }

    /// <summary>
    /// Decodes a TCP record's data, checking that it holds exactly the state and the queues
    /// the state announces; the reason it does not, otherwise.
    /// </summary>
    public static TcpConnection Decode(ReadOnlySpan<byte> data, string where)
    {
        if (data.Length < ImageLayout.TcpConnSize)
        {
            throw new ImageDefect($"{where} has {data.Length} bytes of TCP connection state, less than the {ImageLayout.TcpConnSize} of us_tcp_conn");
        }

        var r = new FieldReader(data);
        uint ports0 = r.U32(), ports1 = r.U32();
        byte[] local = r.Bytes(16).ToArray(), remote = r.Bytes(16).ToArray();
        uint sendSeq = r.U32(), recvSeq = r.U32(), sendLen = r.U32(), unsent = r.U32(), recvLen = r.U32();
        uint mss = r.U32(), timestamp = r.U32(), scales = r.U32();
        uint sndWl1 = r.U32(), sndWnd = r.U32(), maxWindow = r.U32(), rcvWnd = r.U32(), rcvWup = r.U32();
        uint sndbuf = r.U32(), rcvbuf = r.U32(), flags = r.U32();
        var t = new TcpConnection((ushort)ports0, (ushort)(ports0 >> 16), (ushort)ports1, (ushort)(ports1 >> 16),
            local, remote, sendSeq, recvSeq, sendLen, unsent, recvLen, mss, timestamp,
            (byte)scales, (byte)(scales >> 8), (ushort)(scales >> 16),
            sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup, sndbuf, rcvbuf, (TcpFlags)flags);
        if (t.Family is not (InetFamily or Inet6Family))
        {
            throw new ImageDefect($"{where} has a TCP connection of address family {t.Family}, not 2 (IPv4) or 10 (IPv6)");
        }

        if ((flags & ~(uint)TcpFlags.All) != 0)
        {
            throw new ImageDefect($"{where} has unknown TCP connection flags 0x{flags:x}");
        }

        ulong need = (ulong)ImageLayout.TcpConnSize + recvLen + sendLen;
        if (need != (ulong)data.Length || unsent > sendLen)
        {
            throw new ImageDefect($"{where} has {data.Length} bytes of TCP connection data, but its state announces " +
                                  $"{recvLen} received, {sendLen} to send ({unsent} unsent): {need} bytes");
        }

        if (!t.Repaired && (sendLen != 0 || sendSeq != 0 || recvSeq != 0))
        {
            throw new ImageDefect($"{where} has a TCP connection taken without repair that still has sequence numbers or a send queue");
        }

        return t;
    }

    /// <summary>The receive queue that follows the state in a record's data.</summary>
    public ReadOnlySpan<byte> ReceiveQueue(ReadOnlySpan<byte> data) => data.Slice(ImageLayout.TcpConnSize, (int)RecvLength);

    /// <summary>The send queue that follows the receive queue.</summary>
    public ReadOnlySpan<byte> SendQueue(ReadOnlySpan<byte> data) =>
        data.Slice(ImageLayout.TcpConnSize + (int)RecvLength, (int)SendLength);
}

/// <summary>US_TCP_F_*.</summary>
[Flags]
public enum TcpFlags : uint
{
    None = 0,
    Repair = 1,
    FinSent = 2,
    FinReceived = 4,
    NoDelay = 8,
    KeepAlive = 16,
    All = Repair | FinSent | FinReceived | NoDelay | KeepAlive,
}

/// <summary>
/// The data of a UNIX_DGRAM or UNIX_SEQPACKET record: each queued datagram or record as its
/// length (uint32) and its bytes, back to back.
/// </summary>
public static class QueuedRecords
{
    public static byte[] Encode(IReadOnlyList<byte[]> records)
    {
        var d = new byte[records.Sum(r => 4 + r.Length)];
        int at = 0;
        foreach (byte[] r in records)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(at), (uint)r.Length);
            r.CopyTo(d, at + 4);
            at += 4 + r.Length;
        }
        return d;
    }

    /// <summary>The records, refusing data that is not framed exactly.</summary>
    public static IReadOnlyList<byte[]> Decode(ReadOnlySpan<byte> data, string where)
    {
        var records = new List<byte[]>();
        for (int at = 0; at < data.Length;)
        {
            if (data.Length - at < 4)
            {
                throw new ImageDefect($"{where} has {data.Length - at} stray bytes after its last queued record");
            }

            uint n = BinaryPrimitives.ReadUInt32LittleEndian(data[at..]);
            if (n > (uint)(data.Length - at - 4))
            {
                throw new ImageDefect($"{where} has a queued record of {n} bytes where only {data.Length - at - 4} remain");
            }

            records.Add(data.Slice(at + 4, (int)n).ToArray());
            at += 4 + (int)n;
        }
        return records;
    }
}
