using System.Text.Json;
using System.Text.Json.Serialization;

namespace Understudy.Images;

/// <summary>
/// Renders a checkpoint for people and scripts: each manifest member with its decoded image.
/// Addresses are hex strings, protections "rwxp"-style, kinds their lowercase names, and FD aux
/// values are named by kind (docs/image-format.md, "Inspect output").
/// </summary>
internal static class CheckpointInspector
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string ToJson(CheckpointManifest manifest, IReadOnlyList<ProcessImage> images)
    {
        var document = new
        {
            manifest.Format,
            manifest.Version,
            manifest.Group,
            manifest.Id,
            manifest.Seq,
            manifest.Kind,
            manifest.CreatedUtc,
            manifest.Bytes,
            manifest.Merged,
            Members = manifest.Members.Select((m, i) => Member(m, images[i])),
        };
        return JsonSerializer.Serialize(document, Json);
    }

    private static object Member(ManifestMember m, ProcessImage image) => new
    {
        m.Vpid,
        m.Vppid,
        m.App,
        m.ExecCount,
        m.Meta,
        m.MetaBytes,
        m.MetaCrc32c,
        m.Pages,
        m.PagesBytes,
        m.Kind,
        m.BaseSeq,
        m.BaseVpid,
        Header = new
        {
            Kind = ImageNames.Of(image.Header.Kind),
            image.Header.Vpid,
            image.Header.CheckpointSeq,
            image.Header.BaseSeq,
            image.Header.RecordCount,
            image.Header.RecordsLen,
            image.Header.PagesLen,
        },
        Proc = Proc(image.Proc),
        Vmas = image.Vmas.Select(Vma),
        Threads = image.Threads.Select(t => new { t.Tid, t.IsCheckpointThread, FsBase = Hex(t.FsBase), t.Comm }),
        Fds = image.Fds.Select(Fd),
        Files = image.Files.Select(f => new { f.Path, f.Size, f.Dev, f.Inode, f.PagesOff, f.Crc, f.IsUnlinked }),
        Timers = image.Timers.Select(t => new
        {
            t.Id,
            t.ClockId,
            Notify = t.Notify switch
            {
                TimerRecord.SigevNone => "none",
                TimerRecord.SigevThreadId => "thread",
                _ => "signal",
            },
            t.Signo,
            Value = Hex(t.Value),
            Tid = t.SignalsThread ? t.Tid : (int?)null,
            t.IntervalNs,
            t.ValueNs,
        }),
        Ipc = image.Ipc.Select(o => new
        {
            Kind = ImageNames.Of(o.Kind),
            Id = o.Kind == IpcKind.Mqueue ? (int?)null : o.Id,
            Key = o.Kind == IpcKind.Mqueue ? (int?)null : o.Key,
            Name = o.Kind == IpcKind.Mqueue ? "/" + o.Name : null,
            Mode = Convert.ToString(o.Mode, 8).PadLeft(4, '0'),
            o.Uid,
            o.Gid,
            o.Size,
            MsgSize = o.Kind == IpcKind.Mqueue ? o.MsgSize : (ulong?)null,
            PagesOff = o.Kind == IpcKind.Shm ? o.PagesOff : (ulong?)null,
            Crc = o.Kind == IpcKind.Shm ? o.Crc : (uint?)null,
            SemValues = o.Kind == IpcKind.Sem ? o.SemValues : null,
            Messages = o.Kind is IpcKind.Msg or IpcKind.Mqueue ? o.Messages.Select(m => new { m.Type, Bytes = m.Text.Length }) : null,
        }),
        MemoryAdvice = image.MemoryAdvice.Select(m => new { Start = Hex(m.Start), End = Hex(m.End), Flags = m.Flags.ToString() }),
        SigactionCount = image.Sigactions.Count,
        Misc = new
        {
            Itimers = image.Misc.Itimers,
            RlimCur = image.Misc.RlimCur,
            PendingShared = Hex(image.Misc.PendingShared),
        },
        PageTotals = new
        {
            Runs = image.RunCount,
            Pages = image.PageCount,
            Bytes = image.PageCount * ImageLayout.PageSize,
            StoredBytes = image.StoredPageBytes,
            CompressedRuns = image.CompressedRunCount,
            HoleRuns = image.HoleRunCount,
            HolePages = image.HolePageCount,
            FileBytes = image.FileBytes,
            SharedMemoryBytes = image.SharedMemoryBytes,
        },
    };

    private static object Proc(ProcRecord p) => new
    {
        p.Vpid,
        p.Vppid,
        p.Vpgid,
        p.Vsid,
        p.Uid,
        p.Gid,
        p.ExecCount,
        Umask = Convert.ToString(p.Umask, 8).PadLeft(4, '0'),
        Entry = Hex(p.Entry),
        EntryArg = Hex(p.EntryArg),
        Mm = new
        {
            StartCode = Hex(p.Mm.StartCode),
            EndCode = Hex(p.Mm.EndCode),
            StartData = Hex(p.Mm.StartData),
            EndData = Hex(p.Mm.EndData),
            StartBrk = Hex(p.Mm.StartBrk),
            Brk = Hex(p.Mm.Brk),
            StartStack = Hex(p.Mm.StartStack),
            ArgStart = Hex(p.Mm.ArgStart),
            ArgEnd = Hex(p.Mm.ArgEnd),
            EnvStart = Hex(p.Mm.EnvStart),
            EnvEnd = Hex(p.Mm.EnvEnd),
        },
        p.Exe,
        p.Cwd,
        p.Comm,
        AuxvBytes = p.Auxv.Length,
    };

    private static object Vma(VmaRecord v) => new
    {
        Start = Hex(v.Start),
        End = Hex(v.End),
        Prot = ImageNames.Of(v.Prot, v.Flags),
        Kind = ImageNames.Of(v.Kind),
        v.Path,
        v.FileOffset,
        v.Dev,
        v.Inode,
        v.ObjectSize,
        Complete = v.Flags.HasFlag(VmaFlags.Complete),
        NoReserve = v.Flags.HasFlag(VmaFlags.NoReserve),
        Pages = v.Runs.Where(r => !r.IsHole).Sum(r => (long)r.NPages),
        HolePages = v.Runs.Where(r => r.IsHole).Sum(r => (long)r.NPages),
        Runs = v.Runs.Select(r => new { Addr = Hex(r.Addr), Npages = r.NPages, r.PagesOff, r.StoredLen, r.Crc, Hole = r.IsHole, Lz4 = r.IsCompressed }),
    };

    private static object Fd(FdRecord f) => new
    {
        f.Fd,
        Kind = ImageNames.Of(f.Kind),
        f.Path,
        f.Pos,
        f.OpenFlags,
        f.FdFlags,
        f.Mode,
        f.Dev,
        f.Inode,
        Aux = Aux(f.Kind, f.Aux),
        DataBytes = f.Data.Length,
        EpollTargets = f.Kind == FdKind.Epoll ? f.EpollTargets : null,
        OpenFile = FdRecord.HasOpenKey(f.Kind) && f.Aux.OpenKey != 0 ? $"{f.Aux.OpenKey >> 32}:{(uint)f.Aux.OpenKey}" : null,
        Pty = f.Pty is { } p ? new { p.Rows, p.Cols, p.Flags, p.ToSlaveLen, p.ToMasterLen } : null,
        QueuedRecords = FdRecord.HasRecordBoundaries(f.Kind) ? f.Records.Count : (int?)null,
        Tcp = f.Tcp is { } t ? Tcp(t) : null,
    };

    private static object Tcp(TcpConnection t) => new
    {
        t.State,
        Local = Endpoint(t.Family, t.LocalAddress, t.LocalPort),
        Remote = Endpoint(t.Family, t.RemoteAddress, t.RemotePort),
        t.Repaired,
        t.SendSeq,
        t.RecvSeq,
        SendBytes = t.SendLength,
        UnsentBytes = t.UnsentLength,
        RecvBytes = t.RecvLength,
        t.Mss,
        FinSent = t.Flags.HasFlag(TcpFlags.FinSent),
        FinReceived = t.Flags.HasFlag(TcpFlags.FinReceived),
    };

    private static string Endpoint(ushort family, byte[] address, ushort port) =>
        family == TcpConnection.Inet6Family
            ? $"[{new System.Net.IPAddress(address)}]:{port}"
            : $"{new System.Net.IPAddress(address[..4])}:{port}";

    private static object? Aux(FdKind kind, FdAux a) => kind switch
    {
        FdKind.Pipe or FdKind.Fifo => new { a.IsReadEnd },
        FdKind.UnixStream or FdKind.UnixDgram or FdKind.UnixSeqpacket => new { a.PeerInode, a.IsListening },
        FdKind.Tcp => new { a.IsListening, a.ReuseAddress, a.ReusePort },
        FdKind.Udp => new { a.ReuseAddress, a.ReusePort },
        FdKind.Chr => new { a.Rdev },
        FdKind.Eventfd => new { Count = a.EventCount, Flags = a.EventFlags },
        FdKind.Timerfd => new { a.ClockId, a.IntervalNs, a.NextExpiryNs },
        FdKind.Signalfd => new { Mask = Hex(a.SignalMask) },
        FdKind.Memfd => new { Seals = Hex(a.Seals) },
        FdKind.PtyMaster => new { a.PtyIndex },
        FdKind.PtySlave => new { a.PtyIndex, a.IsControllingTerminal, a.ForegroundGroup },
        _ => null,
    };

    private static string Hex(ulong value) => $"0x{value:x}";
}
