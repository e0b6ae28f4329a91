using System.Buffers.Binary;

namespace Understudy.Images;

/// <summary>struct us_rec_fd, its path and its data.</summary>
/// <param name="Data">
/// Pipes, FIFOs and Unix stream sockets: bytes that were queued for reading. Unix datagram and
/// seqpacket sockets: the queued records (<see cref="QueuedRecords"/>). A connected TCP socket:
/// its state and queues (<see cref="TcpConnection"/>). Epoll: the targets
/// (<see cref="EpollTargets"/>). PTY_MASTER: the pair's state and queued bytes
/// (<see cref="Pty"/>). Empty for every other kind.
/// </param>
public sealed record FdRecord(
    int Fd,
    uint FdFlags,
    FdKind Kind,
    uint OpenFlags,
    ulong Pos,
    ulong Dev,
    ulong Inode,
    uint Mode,
    string Path,
    FdAux Aux,
    byte[] Data)
{
    /// <summary>FD_CLOEXEC, the only descriptor flag Linux has.</summary>
    public const uint CloseOnExec = 1;

    /// <summary>The epoll targets held in <see cref="Data"/>; empty for other kinds.</summary>
    public IReadOnlyList<EpollTarget> EpollTargets => Kind == FdKind.Epoll ? EpollTarget.Decode(Data) : [];

    /// <summary>Whether aux[3] of a descriptor of this kind is its open file key (<see cref="FdAux.OpenKey"/>).</summary>
    public static bool HasOpenKey(FdKind kind) =>
        kind is FdKind.File or FdKind.Dir or FdKind.Chr or FdKind.Eventfd or FdKind.Timerfd or FdKind.Epoll
            or FdKind.Signalfd or FdKind.Memfd or FdKind.PtyMaster or FdKind.PtySlave;

    /// <summary>The pty pair's state and queued bytes held in <see cref="Data"/> (PTY_MASTER), else null.</summary>
    public PtyState? Pty => Kind == FdKind.PtyMaster ? PtyState.Decode(Data) : null;

    /// <summary>The connection state held in <see cref="Data"/>: a connected TCP socket's; null otherwise.</summary>
    public TcpConnection? Tcp => Kind == FdKind.Tcp && Data.Length > 0 ? TcpConnection.Decode(Data, $"fd {Fd}") : null;

    /// <summary>The datagrams or records held in <see cref="Data"/>; empty for other kinds.</summary>
    public IReadOnlyList<byte[]> Records =>
        HasRecordBoundaries(Kind) ? Understudy.Images.QueuedRecords.Decode(Data, $"fd {Fd}") : [];

    /// <summary>Whether a descriptor of this kind may carry <see cref="Data"/>.</summary>
    public static bool CarriesData(FdKind kind) =>
        kind is FdKind.Pipe or FdKind.Fifo or FdKind.UnixStream or FdKind.UnixDgram or FdKind.UnixSeqpacket
            or FdKind.Tcp or FdKind.Epoll or FdKind.PtyMaster;

    /// <summary>Whether the data of this kind is framed as records (datagrams, seqpacket records).</summary>
    public static bool HasRecordBoundaries(FdKind kind) => kind is FdKind.UnixDgram or FdKind.UnixSeqpacket;
}

/// <summary>
/// us_rec_fd.aux, whose meaning depends on the kind (docs/image-format.md). The named accessors
/// read it for the kinds that define it.
/// </summary>
public readonly record struct FdAux(ulong A0 = 0, ulong A1 = 0, ulong A2 = 0, ulong A3 = 0)
{
    /// <summary>PIPE, FIFO.</summary>
    public bool IsReadEnd => A0 == 1;

    /// <summary>UNIX_STREAM, UNIX_DGRAM, UNIX_SEQPACKET; 0 when unknown.</summary>
    public ulong PeerInode => A0;

    /// <summary>UNIX_STREAM, UNIX_DGRAM, UNIX_SEQPACKET, TCP.</summary>
    public bool IsListening => A1 == 1;

    /// <summary>TCP, UDP: SO_REUSEADDR was set (US_INET_F_REUSEADDR).</summary>
    public bool ReuseAddress => (A2 & 1) != 0;

    /// <summary>TCP, UDP: SO_REUSEPORT was set (US_INET_F_REUSEPORT).</summary>
    public bool ReusePort => (A2 & 2) != 0;

    /// <summary>CHR.</summary>
    public ulong Rdev => A0;

    /// <summary>EVENTFD.</summary>
    public ulong EventCount => A0;

    /// <summary>EVENTFD.</summary>
    public ulong EventFlags => A1;

    /// <summary>TIMERFD.</summary>
    public ulong ClockId => A0;

    /// <summary>TIMERFD.</summary>
    public ulong IntervalNs => A1;

    /// <summary>TIMERFD: nanoseconds until the next expiry, 0 when disarmed.</summary>
    public ulong NextExpiryNs => A2;

    /// <summary>SIGNALFD.</summary>
    public ulong SignalMask => A0;

    /// <summary>MEMFD: its seals (F_GET_SEALS).</summary>
    public ulong Seals => A0;

    /// <summary>PTY_MASTER, PTY_SLAVE: the pair's index, N of /dev/pts/N.</summary>
    public ulong PtyIndex => A0;

    /// <summary>PTY_SLAVE: the controlling terminal of its process, a session leader (US_PTY_SLAVE_CTTY).</summary>
    public bool IsControllingTerminal => (A1 & 1) != 0;

    /// <summary>PTY_SLAVE that <see cref="IsControllingTerminal"/>: the terminal's foreground process group.</summary>
    public ulong ForegroundGroup => A2;

    /// <summary>
    /// FILE, DIR, CHR, EVENTFD, TIMERFD, EPOLL, SIGNALFD, MEMFD, PTY_MASTER, PTY_SLAVE: the key of
    /// the open file description when other descriptors of the group share it ((vpid &lt;&lt; 32) | fd
    /// of its lowest holder), 0 when none does.
    /// </summary>
    public ulong OpenKey => A3;
}

/// <summary>struct us_pty_state, the start of a PTY_MASTER record's data, and the bytes queued after it.</summary>
/// <param name="Termios">The kernel's struct termios2, 44 bytes.</param>
public sealed record PtyState(byte[] Termios, ushort Rows, ushort Cols, ushort XPixels, ushort YPixels, uint Flags,
    uint ToSlaveLen, uint ToMasterLen)
{
    /// <summary>US_PTY_F_LOCKED: the slave could not be opened.</summary>
    public const uint Locked = 1;

    /// <summary>US_PTY_F_PACKET: TIOCPKT mode on the master.</summary>
    public const uint Packet = 2;

    /// <summary>A PTY_MASTER record's data: this state (its lengths from the queues), then the queues.</summary>
    public static byte[] Encode(PtyState state, ReadOnlySpan<byte> toSlave, ReadOnlySpan<byte> toMaster)
    {
        if (state.Termios.Length != 44)
        {
            throw new ArgumentException("termios is the kernel's 44-byte struct termios2", nameof(state));
        }

        var data = new byte[ImageLayout.PtyStateSize + toSlave.Length + toMaster.Length];
        Span<byte> d = data;
        state.Termios.CopyTo(d);
        BinaryPrimitives.WriteUInt16LittleEndian(d[44..], state.Rows);
        BinaryPrimitives.WriteUInt16LittleEndian(d[46..], state.Cols);
        BinaryPrimitives.WriteUInt16LittleEndian(d[48..], state.XPixels);
        BinaryPrimitives.WriteUInt16LittleEndian(d[50..], state.YPixels);
        BinaryPrimitives.WriteUInt32LittleEndian(d[52..], state.Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(d[56..], (uint)toSlave.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(d[60..], (uint)toMaster.Length);
        toSlave.CopyTo(d[ImageLayout.PtyStateSize..]);
        toMaster.CopyTo(d[(ImageLayout.PtyStateSize + toSlave.Length)..]);
        return data;
    }

    /// <summary>Decodes the state at the start of data; the reader has checked it is there.</summary>
    public static PtyState Decode(ReadOnlySpan<byte> data) => new(
        data[..44].ToArray(),
        BinaryPrimitives.ReadUInt16LittleEndian(data[44..]),
        BinaryPrimitives.ReadUInt16LittleEndian(data[46..]),
        BinaryPrimitives.ReadUInt16LittleEndian(data[48..]),
        BinaryPrimitives.ReadUInt16LittleEndian(data[50..]),
        BinaryPrimitives.ReadUInt32LittleEndian(data[52..]),
        BinaryPrimitives.ReadUInt32LittleEndian(data[56..]),
        BinaryPrimitives.ReadUInt32LittleEndian(data[60..]));
}

/// <summary>struct us_epoll_target.</summary>
public sealed record EpollTarget(int Fd, uint Events, ulong Data)
{
    public static byte[] Encode(IReadOnlyList<EpollTarget> targets)
    {
        var bytes = new byte[targets.Count * ImageLayout.EpollTargetSize];
        for (int i = 0; i < targets.Count; i++)
        {
            Span<byte> t = bytes.AsSpan(i * ImageLayout.EpollTargetSize, ImageLayout.EpollTargetSize);
            BinaryPrimitives.WriteInt32LittleEndian(t, targets[i].Fd);
            BinaryPrimitives.WriteUInt32LittleEndian(t[4..], targets[i].Events);
            BinaryPrimitives.WriteUInt64LittleEndian(t[8..], targets[i].Data);
        }
        return bytes;
    }

    /// <summary>Decodes whole targets; the reader has already refused data that is not a multiple of 16 bytes.</summary>
    public static IReadOnlyList<EpollTarget> Decode(ReadOnlySpan<byte> data)
    {
        var targets = new EpollTarget[data.Length / ImageLayout.EpollTargetSize];
        for (int i = 0; i < targets.Length; i++)
        {
            ReadOnlySpan<byte> t = data.Slice(i * ImageLayout.EpollTargetSize, ImageLayout.EpollTargetSize);
            targets[i] = new EpollTarget(
                BinaryPrimitives.ReadInt32LittleEndian(t),
                BinaryPrimitives.ReadUInt32LittleEndian(t[4..]),
                BinaryPrimitives.ReadUInt64LittleEndian(t[8..]));
        }
        return targets;
    }
}
