using static Understudy.Images.ImageLayout;

namespace Understudy.Images;

/// <summary>
/// Lays a <see cref="ProcessImage"/> out exactly as the C structs of us_image.h, in the record
/// order of the native writer (native/src/interceptor/capture.c): PROC, THREAD..., SIGACT, MISC,
/// TIMER..., FD..., FILE..., IPC..., VMA..., MADVICE, so that rewriting a native image gives back its bytes. Validation is left to
/// the parser, which the writer runs on the result.
/// </summary>
internal static class MetaEncoder
{
    public static byte[] Encode(ProcessImage image)
    {
        var records = new FieldWriter();
        uint count = 0;

        void Append(RecordType type, FieldWriter payload)
        {
            records.U32((uint)type);
            records.U32((uint)payload.Length);
            records.Bytes(payload.Written);
            records.Zeros((int)(Align(payload.Length) - payload.Length));
            count++;
        }

        Append(RecordType.Proc, Proc(image.Proc));
        foreach (ThreadRecord thread in image.Threads)
        {
            Append(RecordType.Thread, Thread(thread));
        }

        Append(RecordType.Sigact, Sigact(image.Sigactions));
        Append(RecordType.Misc, Misc(image.Misc));
        foreach (TimerRecord timer in image.Timers)
        {
            Append(RecordType.Timer, Timer(timer));
        }

        foreach (FdRecord fd in image.Fds)
        {
            Append(RecordType.Fd, Fd(fd));
        }

        foreach (FileRecord file in image.Files)
        {
            Append(RecordType.File, File(file));
        }

        foreach (IpcRecord ipc in image.Ipc)
        {
            Append(RecordType.Ipc, Ipc(ipc));
        }

        foreach (VmaRecord vma in image.Vmas)
        {
            Append(RecordType.Vma, Vma(vma));
        }

        if (image.MemoryAdvice.Count > 0)
        {
            Append(RecordType.Madvice, Madvice(image.MemoryAdvice));
        }

        MetaHeader h = image.Header;
        var header = new FieldWriter();
        header.Bytes(Magic);
        header.U32(FormatVersion);
        header.U32(HeaderSize);
        header.U32((uint)h.Kind);
        header.U32(count);
        header.U64((ulong)records.Length);
        header.U64(h.PagesLen);
        header.U32(Crc32C.Compute(records.Written));
        header.U32(h.Vpid);
        header.U64(h.CheckpointSeq);
        header.U32(h.BaseSeq);
        header.U32(Crc32C.Compute(header.Written));

        return [.. header.Written, .. records.Written];
    }

    private static FieldWriter Proc(ProcRecord p)
    {
        byte[] exe = PosixString.Encode(p.Exe), cwd = PosixString.Encode(p.Cwd), comm = PosixString.Encode(p.Comm);
        var w = new FieldWriter();
        foreach (uint v in (uint[])[p.Vpid, p.Vppid, p.Vpgid, p.Vsid, p.Uid, p.Gid, p.ExecCount, p.Umask])
        {
            w.U32(v);
        }

        w.U64(p.Entry);
        w.U64(p.EntryArg);
        foreach (ulong v in p.Mm.ToArray())
        {
            w.U64(v);
        }

        w.U32((uint)exe.Length);
        w.U32((uint)cwd.Length);
        w.U32((uint)comm.Length);
        w.U32((uint)p.Auxv.Length);
        w.Bytes(exe);
        w.Bytes(cwd);
        w.Bytes(comm);
        w.Bytes(p.Auxv);
        return w;
    }

    private static FieldWriter Vma(VmaRecord v)
    {
        byte[] path = PosixString.Encode(v.Path);
        var w = new FieldWriter();
        w.U64(v.Start);
        w.U64(v.End);
        w.U32((uint)v.Prot);
        w.U32((uint)v.Flags);
        w.U32((uint)v.Kind);
        w.U32((uint)path.Length);
        w.U64(v.FileOffset);
        w.U64(v.Dev);
        w.U64(v.Inode);
        w.U64(v.ObjectSize);
        w.U32((uint)v.Runs.Count);
        w.U32(0);
        foreach (PageRun run in v.Runs)
        {
            w.U64(run.Addr);
            w.U64(run.NPages);
            w.U64(run.PagesOff);
            w.U64(run.StoredLen);
            w.U32(run.Crc);
            w.U32((uint)run.Flags);
        }
        w.Bytes(path);
        return w;
    }

    private static FieldWriter File(FileRecord f)
    {
        byte[] path = PosixString.Encode(f.Path);
        var w = new FieldWriter();
        w.U64(f.Dev);
        w.U64(f.Inode);
        w.U64(f.Size);
        w.U64(f.PagesOff);
        w.U32(f.Crc);
        w.U32((uint)path.Length);
        w.U32(f.Flags);
        w.U32(0);
        w.Bytes(path);
        return w;
    }

    private static FieldWriter Timer(TimerRecord t)
    {
        var w = new FieldWriter();
        w.I32(t.Id);
        w.I32(t.ClockId);
        w.I32(t.Notify);
        w.I32(t.Signo);
        w.U64(t.Value);
        w.I32(t.Tid);
        w.U32(0);
        w.U64(t.IntervalNs);
        w.U64(t.ValueNs);
        return w;
    }

    private static FieldWriter Ipc(IpcRecord o)
    {
        byte[] name = PosixString.Encode(o.Name);
        var data = new FieldWriter();
        foreach (ushort value in o.SemValues)
        {
            data.U16(value);
        }

        foreach (IpcMessage m in o.Messages)
        {
            data.I64(m.Type);
            data.U32((uint)m.Text.Length);
            data.U32(0);
            data.Bytes(m.Text);
            data.Zeros((int)(Align(m.Text.Length) - m.Text.Length));
        }
        var w = new FieldWriter();
        w.U32((uint)o.Kind);
        w.I32(o.Id);
        w.I32(o.Key);
        w.U32(o.Mode);
        w.U32(o.Uid);
        w.U32(o.Gid);
        w.U64(o.Size);
        w.U64(o.MsgSize);
        w.U64(o.PagesOff);
        w.U32(o.Crc);
        w.U32((uint)o.Messages.Count);
        w.U32((uint)name.Length);
        w.U32((uint)data.Length);
        w.Bytes(data.Written);
        w.Bytes(name);
        return w;
    }

    private static FieldWriter Madvice(IReadOnlyList<MemoryAdvice> ranges)
    {
        var w = new FieldWriter();
        w.U32((uint)ranges.Count);
        w.U32(0);
        foreach (MemoryAdvice m in ranges)
        {
            w.U64(m.Start);
            w.U64(m.End);
            w.U32((uint)m.Flags);
            w.U32(0);
        }
        return w;
    }

    private static FieldWriter Thread(ThreadRecord t)
    {
        byte[] comm = PosixString.Encode(t.Comm);
        if (comm.Length > ThreadCommSize)
        {
            throw new ArgumentException($"thread {t.Tid}: comm \"{t.Comm}\" is {comm.Length} bytes, more than the {ThreadCommSize} of us_rec_thread.comm");
        }

        var w = new FieldWriter();
        w.U32(t.Tid);
        w.U32(t.IsCheckpointThread ? 1u : 0u);
        w.U64(t.FsBase);
        w.Bytes(comm);
        w.Zeros(ThreadCommSize - comm.Length);
        return w;
    }

    private static FieldWriter Fd(FdRecord f)
    {
        byte[] path = PosixString.Encode(f.Path);
        var w = new FieldWriter();
        w.I32(f.Fd);
        w.U32(f.FdFlags);
        w.U32((uint)f.Kind);
        w.U32(f.OpenFlags);
        w.U64(f.Pos);
        w.U64(f.Dev);
        w.U64(f.Inode);
        w.U32(f.Mode);
        w.U32((uint)path.Length);
        w.U64(f.Aux.A0);
        w.U64(f.Aux.A1);
        w.U64(f.Aux.A2);
        w.U64(f.Aux.A3);
        w.U32((uint)f.Data.Length);
        w.U32(0);
        w.Bytes(path);
        w.Bytes(f.Data);
        return w;
    }

    private static FieldWriter Sigact(IReadOnlyList<SigactionEntry> entries)
    {
        var w = new FieldWriter();
        w.U32((uint)entries.Count);
        w.U32(0);
        foreach (SigactionEntry e in entries)
        {
            w.U32(e.Signo);
            w.U32(0);
            w.U64(e.Handler);
            w.U64(e.Flags);
            w.U64(e.Restorer);
            w.U64(e.Mask);
        }
        return w;
    }

    private static FieldWriter Misc(MiscRecord m)
    {
        if (m.Itimers.Count != ItimerCount || m.RlimCur.Count != RlimitCount)
        {
            throw new ArgumentException($"MISC needs {ItimerCount} itimers and {RlimitCount} rlimits, got {m.Itimers.Count} and {m.RlimCur.Count}");
        }

        var w = new FieldWriter();
        foreach (ItimerValue t in m.Itimers)
        {
            w.I64(t.IntervalSec);
            w.I64(t.IntervalUsec);
            w.I64(t.ValueSec);
            w.I64(t.ValueUsec);
        }
        foreach (ulong limit in m.RlimCur)
        {
            w.U64(limit);
        }

        w.U64(m.PendingShared);
        return w;
    }
}
