using System.Buffers.Binary;

namespace Understudy.Images;

/// <summary>struct us_rec_fd, its path and its data.</summary>
/// <param name="Data">
/// Pipes, FIFOs and sockets: bytes that were queued for reading. Epoll: the targets
/// (<see cref="EpollTargets"/>). Empty for every other kind.
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

    /// <summary>Whether a descriptor of this kind may carry <see cref="Data"/>.</summary>
    public static bool CarriesData(FdKind kind) =>
        kind is FdKind.Pipe or FdKind.Fifo or FdKind.UnixStream or FdKind.UnixDgram or FdKind.Epoll;
}

/// <summary>
/// us_rec_fd.aux, whose meaning depends on the kind (docs/image-format.md). The named accessors
/// read it for the kinds that define it.
/// </summary>
public readonly record struct FdAux(ulong A0 = 0, ulong A1 = 0, ulong A2 = 0, ulong A3 = 0)
{
    /// <summary>PIPE, FIFO.</summary>
    public bool IsReadEnd => A0 == 1;

    /// <summary>UNIX_STREAM, UNIX_DGRAM; 0 when unknown.</summary>
    public ulong PeerInode => A0;

    /// <summary>UNIX_STREAM, UNIX_DGRAM.</summary>
    public bool IsListening => A1 == 1;

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
