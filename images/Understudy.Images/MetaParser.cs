using static Understudy.Images.ImageLayout;

namespace Understudy.Images;

/// <summary>
/// Decodes and validates the bytes of a .meta file. Every length, count and offset is checked
/// before it is used, so any input ends in a <see cref="ProcessImage"/> or an <see cref="ImageDefect"/>.
/// </summary>
internal static class MetaParser
{
    /// <summary>
    /// Validates the header alone, so a reader can refuse a file before reading all of it.
    /// <paramref name="start"/> holds the first min(64, <paramref name="fileLength"/>) bytes.
    /// </summary>
    public static MetaHeader ParseHeader(ReadOnlySpan<byte> start, long fileLength)
    {
        if (fileLength < HeaderSize)
        {
            throw new ImageDefect($"the file is {fileLength} bytes, shorter than the {HeaderSize}-byte header");
        }

        ReadOnlySpan<byte> bytes = start[..HeaderSize];
        if (!bytes[..8].SequenceEqual(Magic))
        {
            throw new ImageDefect("bad magic: this is not an Understudy .meta file");
        }

        var r = new FieldReader(bytes[8..]);
        uint version = r.U32();
        // An older image is not damaged, and older checkpoints are of the same older format:
        // restoring one of them would not help, a new checkpoint does.
        if (version < FormatVersion)
        {
            throw new ImageDefect($"image format version {version} is not supported by this build (it reads version {FormatVersion})",
                unsupported: true, advice: "take a new checkpoint");
        }

        if (version != FormatVersion)
        {
            throw new ImageDefect($"image format version {version} is not supported by this build (it reads version {FormatVersion})", unsupported: true);
        }

        uint headerSize = r.U32();
        if (headerSize != HeaderSize)
        {
            throw new ImageDefect($"header_size is {headerSize}, a version {FormatVersion} header is {HeaderSize} bytes");
        }

        uint kind = r.U32();
        uint recordCount = r.U32();
        ulong recordsLen = r.U64();
        ulong pagesLen = r.U64();
        uint recordsCrc = r.U32();
        uint vpid = r.U32();
        ulong seq = r.U64();
        uint baseSeq = r.U32();
        uint headerCrc = r.U32();

        // The checksum comes before any field's meaning, so a flipped bit anywhere in the header
        // is reported as what it is rather than as a strange value.
        uint computed = Crc32C.Compute(bytes[..HeaderCrcOffset]);
        if (computed != headerCrc)
        {
            throw new ImageDefect($"header checksum mismatch (stored 0x{headerCrc:x8}, computed 0x{computed:x8})");
        }

        var imageKind = (ImageKind)kind;
        if (imageKind is not (ImageKind.Full or ImageKind.Incremental))
        {
            throw new ImageDefect($"unknown image kind {kind}");
        }

        if (vpid == 0)
        {
            throw new ImageDefect("the header's vpid is 0");
        }

        if (seq == 0)
        {
            throw new ImageDefect("the header's checkpoint_seq is 0");
        }

        if (imageKind == ImageKind.Full && baseSeq != 0)
        {
            throw new ImageDefect($"a full image has base_seq {baseSeq}, expected 0");
        }

        if (imageKind == ImageKind.Incremental && (baseSeq == 0 || baseSeq >= seq))
        {
            throw new ImageDefect($"an incremental image of checkpoint {seq} has base_seq {baseSeq}; it must name an earlier checkpoint");
        }

        if (recordsLen != (ulong)(fileLength - HeaderSize))
        {
            throw new ImageDefect($"the header says {recordsLen} bytes of records but the file has {fileLength - HeaderSize} after the header (truncated or overwritten)");
        }

        if (recordsLen > (ulong)(Array.MaxLength - HeaderSize))
        {
            throw new ImageDefect($"{recordsLen} bytes of records is more than a reader accepts ({Array.MaxLength - HeaderSize})");
        }

        return new MetaHeader(imageKind, vpid, seq, baseSeq)
        {
            RecordCount = recordCount,
            RecordsLen = recordsLen,
            PagesLen = pagesLen,
            RecordsCrc = recordsCrc,
            HeaderCrc = headerCrc,
        };
    }

    public static ProcessImage Parse(ReadOnlySpan<byte> meta)
    {
        MetaHeader header = ParseHeader(meta, meta.Length);
        ReadOnlySpan<byte> records = meta[HeaderSize..];
        uint computed = Crc32C.Compute(records);
        if (computed != header.RecordsCrc)
        {
            throw new ImageDefect($"records checksum mismatch (stored 0x{header.RecordsCrc:x8}, computed 0x{computed:x8})");
        }

        var image = new Collector(header);
        int offset = 0;
        int index = 0;
        while (offset < records.Length)
        {
            int at = HeaderSize + offset;
            int left = records.Length - offset;
            if (left < RecordHeaderSize)
            {
                throw new ImageDefect($"record {index} at byte {at} is cut off: {left} bytes left, a record header needs {RecordHeaderSize}");
            }

            var r = new FieldReader(records.Slice(offset, RecordHeaderSize));
            var type = (RecordType)r.U32();
            uint len = r.U32();
            if (!Enum.IsDefined(type))
            {
                throw new ImageDefect($"record {index} at byte {at} has unknown type {(uint)type}");
            }

            string context = $"{ImageNames.Of(type)} record {index} at byte {at}";
            long padded = Align(len);
            if (padded > left - RecordHeaderSize)
            {
                throw new ImageDefect($"{context} claims {len} payload bytes ({padded} padded) but only {left - RecordHeaderSize} remain");
            }

            ReadOnlySpan<byte> payload = records.Slice(offset + RecordHeaderSize, (int)len);
            if (records.Slice(offset + RecordHeaderSize + (int)len, (int)(padded - len)).ContainsAnyExcept((byte)0))
            {
                throw new ImageDefect($"{context} has nonzero padding");
            }

            image.Add(type, payload, context);
            offset += RecordHeaderSize + (int)padded;
            index++;
        }
        if (index != header.RecordCount)
        {
            throw new ImageDefect($"the header says {header.RecordCount} records but {index} were found");
        }

        return image.Finish();
    }

    /// <summary>Accumulates records and checks the rules that span several of them.</summary>
    private sealed class Collector(MetaHeader header)
    {
        private readonly List<VmaRecord> _vmas = [];
        private readonly List<FileRecord> _files = [];
        private readonly HashSet<string> _filePaths = new(StringComparer.Ordinal);
        private readonly HashSet<(ulong Dev, ulong Inode)> _unlinkedFiles = [];
        private readonly List<ThreadRecord> _threads = [];
        private readonly List<FdRecord> _fds = [];
        private readonly HashSet<uint> _tids = [];
        private readonly HashSet<int> _fdNumbers = [];
        private readonly List<TimerRecord> _timers = [];
        private readonly HashSet<int> _timerIds = [];
        private readonly List<IpcRecord> _ipc = [];
        private readonly HashSet<(IpcKind, int)> _ipcIds = [];
        private readonly HashSet<string> _queueNames = new(StringComparer.Ordinal);
        private ProcRecord? _proc;
        private IReadOnlyList<SigactionEntry>? _sigactions;
        private MiscRecord? _misc;
        private IReadOnlyList<MemoryAdvice>? _advice;
        private string? _adviceContext;

        public void Add(RecordType type, ReadOnlySpan<byte> payload, string context)
        {
            switch (type)
            {
                case RecordType.Proc:
                    if (_proc is not null)
                    {
                        throw new ImageDefect($"{context} is a second PROC record");
                    }

                    _proc = ParseProc(payload, context);
                    break;
                case RecordType.Vma:
                    VmaRecord vma = ParseVma(payload, context, header.Kind, header.PagesLen);
                    if (_vmas.Count > 0 && vma.Start < _vmas[^1].End)
                    {
                        throw new ImageDefect($"{context} at 0x{vma.Start:x} is not above the previous VMA, which ends at 0x{_vmas[^1].End:x}");
                    }

                    _vmas.Add(vma);
                    break;
                case RecordType.Thread:
                    ThreadRecord thread = ParseThread(payload, context);
                    if (!_tids.Add(thread.Tid))
                    {
                        throw new ImageDefect($"{context} repeats thread {thread.Tid}");
                    }

                    _threads.Add(thread);
                    break;
                case RecordType.Fd:
                    FdRecord fd = ParseFd(payload, context);
                    if (!_fdNumbers.Add(fd.Fd))
                    {
                        throw new ImageDefect($"{context} repeats fd {fd.Fd}");
                    }

                    _fds.Add(fd);
                    break;
                case RecordType.Sigact:
                    if (_sigactions is not null)
                    {
                        throw new ImageDefect($"{context} is a second SIGACT record");
                    }

                    _sigactions = ParseSigact(payload, context);
                    break;
                case RecordType.Misc:
                    if (_misc is not null)
                    {
                        throw new ImageDefect($"{context} is a second MISC record");
                    }

                    _misc = ParseMisc(payload, context);
                    break;
                case RecordType.File:
                    FileRecord file = ParseFile(payload, context);
                    // Two contents for one file would make a restore's result depend on order.
                    if (file.IsUnlinked ? !_unlinkedFiles.Add((file.Dev, file.Inode)) : !_filePaths.Add(file.Path))
                    {
                        throw new ImageDefect($"{context} repeats the file {ImageLocation.OneLine(file.Path)}");
                    }

                    _files.Add(file);
                    break;
                case RecordType.Timer:
                    TimerRecord timer = ParseTimer(payload, context);
                    if (!_timerIds.Add(timer.Id))
                    {
                        throw new ImageDefect($"{context} repeats timer {timer.Id}");
                    }

                    _timers.Add(timer);
                    break;
                case RecordType.Ipc:
                    IpcRecord ipc = ParseIpc(payload, context, header.PagesLen);
                    // Two objects under one id or name could not both be made again.
                    if (ipc.Kind == IpcKind.Mqueue ? !_queueNames.Add(ipc.Name) : !_ipcIds.Add((ipc.Kind, ipc.Id)))
                    {
                        throw new ImageDefect($"{context} repeats the {ipc.Describe()}");
                    }

                    _ipc.Add(ipc);
                    break;
                case RecordType.Madvice:
                    if (_advice is not null)
                    {
                        throw new ImageDefect($"{context} is a second MADVICE record");
                    }

                    _advice = ParseMadvice(payload, context);
                    _adviceContext = context;
                    break;
            }
        }

        public ProcessImage Finish()
        {
            if (_proc is null)
            {
                throw new ImageDefect("there is no PROC record");
            }

            if (_proc.Vpid != header.Vpid)
            {
                throw new ImageDefect($"the PROC record's vpid {_proc.Vpid} differs from the header's vpid {header.Vpid}");
            }

            if (_threads.Count == 0)
            {
                throw new ImageDefect("there is no THREAD record");
            }

            if (_sigactions is null)
            {
                throw new ImageDefect("there is no SIGACT record");
            }

            if (_misc is null)
            {
                throw new ImageDefect("there is no MISC record");
            }

            foreach (MemoryAdvice range in _advice ?? [])
            {
                // Advice is given to memory of the image: a range outside every mapping is not.
                if (!_vmas.Any(v => v.Start <= range.Start && range.End <= v.End))
                {
                    throw new ImageDefect($"{_adviceContext} has the range 0x{range.Start:x}-0x{range.End:x}, which no VMA of the image holds");
                }
            }

            return new ProcessImage(header, _proc, _vmas, _threads, _fds, _sigactions, _misc)
            {
                Files = _files,
                Timers = _timers,
                Ipc = _ipc,
                MemoryAdvice = _advice ?? [],
            };
        }
    }

    private static ProcRecord ParseProc(ReadOnlySpan<byte> p, string context)
    {
        RequireAtLeast(p, ProcSize, "us_rec_proc", context);
        var r = new FieldReader(p);
        uint vpid = r.U32(), vppid = r.U32(), vpgid = r.U32(), vsid = r.U32();
        uint uid = r.U32(), gid = r.U32(), execCount = r.U32(), umask = r.U32();
        ulong entry = r.U64(), entryArg = r.U64();
        Span<ulong> mm = stackalloc ulong[MmFieldCount];
        for (int i = 0; i < mm.Length; i++)
        {
            mm[i] = r.U64();
        }

        uint exeLen = r.U32(), cwdLen = r.U32(), commLen = r.U32(), auxvLen = r.U32();
        ulong need = (ulong)ProcSize + exeLen + cwdLen + commLen + auxvLen;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but its struct and strings (exe {exeLen}, cwd {cwdLen}, comm {commLen}, auxv {auxvLen}) need {need}");
        }

        if (vpid == 0)
        {
            throw new ImageDefect($"{context} has vpid 0");
        }

        return new ProcRecord(vpid, vppid, vpgid, vsid, uid, gid, execCount, umask, entry, entryArg,
            MmLayout.FromArray(mm),
            PosixString.Decode(r.Bytes((int)exeLen)),
            PosixString.Decode(r.Bytes((int)cwdLen)),
            PosixString.Decode(r.Bytes((int)commLen)),
            r.Bytes((int)auxvLen).ToArray());
    }

    private static VmaRecord ParseVma(ReadOnlySpan<byte> p, string context, ImageKind imageKind, ulong pagesLen)
    {
        RequireAtLeast(p, VmaSize, "us_rec_vma", context);
        var r = new FieldReader(p);
        ulong start = r.U64(), end = r.U64();
        uint prot = r.U32(), flags = r.U32(), kind = r.U32(), pathLen = r.U32();
        ulong fileOffset = r.U64(), dev = r.U64(), inode = r.U64(), objectSize = r.U64();
        uint nruns = r.U32(), reserved = r.U32();
        ulong need = (ulong)VmaSize + (ulong)nruns * PageRunSize + pathLen;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but its struct, {nruns} page runs and {pathLen}-byte path need {need}");
        }

        string where = $"{context} (VMA 0x{start:x}-0x{end:x})";
        if (start % PageSize != 0 || end % PageSize != 0 || start >= end)
        {
            throw new ImageDefect($"{where} is not a nonempty page-aligned range");
        }

        if ((VmaKind)kind is < VmaKind.Anon or > VmaKind.VvarVclock)
        {
            throw new ImageDefect($"{where} has unknown kind {kind}");
        }

        if ((prot & ~(uint)(VmaProt.Read | VmaProt.Write | VmaProt.Exec)) != 0)
        {
            throw new ImageDefect($"{where} has unknown prot bits 0x{prot:x}");
        }

        if ((flags & ~(uint)(VmaFlags.Shared | VmaFlags.Complete | VmaFlags.NoReserve)) != 0)
        {
            throw new ImageDefect($"{where} has unknown flags 0x{flags:x}");
        }

        RequireZero(reserved, where);

        var runs = new PageRun[nruns];
        ulong next = start;
        for (int i = 0; i < runs.Length; i++)
        {
            ulong addr = r.U64(), npages = r.U64(), pagesOff = r.U64(), storedLen = r.U64();
            uint crc = r.U32(), runFlags = r.U32();
            string run = $"{where} page run {i} at 0x{addr:x}";
            if (addr % PageSize != 0)
            {
                throw new ImageDefect($"{run} is not page-aligned");
            }

            if (npages == 0)
            {
                throw new ImageDefect($"{run} has no pages");
            }

            if (addr < next)
            {
                throw new ImageDefect($"{run} overlaps the VMA's start or the previous run (runs must ascend)");
            }

            if (addr >= end || npages > (end - addr) / PageSize)
            {
                throw new ImageDefect($"{run} with {npages} pages reaches past the VMA's end");
            }

            CheckRunData(run, imageKind, pagesLen, npages, pagesOff, storedLen, crc, runFlags);
            runs[i] = new PageRun(addr, npages, pagesOff, storedLen, crc, (PageRunFlags)runFlags);
            next = addr + npages * PageSize;
        }
        return new VmaRecord(start, end, (VmaProt)prot, (VmaFlags)flags, (VmaKind)kind, fileOffset, dev, inode, objectSize,
            runs, PosixString.Decode(r.Bytes((int)pathLen)));
    }

    /// <summary>
    /// Where and how a run's data is stored, by kind of run: a hole has none, a raw run has its
    /// pages page-aligned, a compressed run one bounded, 8-aligned LZ4 block. <paramref name="npages"/>
    /// is already known to fit in the VMA, so npages*4096 does not overflow.
    /// </summary>
    private static void CheckRunData(string run, ImageKind imageKind, ulong pagesLen, ulong npages, ulong pagesOff, ulong storedLen, uint crc, uint runFlags)
    {
        if ((runFlags & ~(uint)(PageRunFlags.Hole | PageRunFlags.Lz4)) != 0)
        {
            throw new ImageDefect($"{run} has unknown flags 0x{runFlags:x}");
        }

        var flags = (PageRunFlags)runFlags;
        ulong bytes = npages * PageSize;
        if (flags.HasFlag(PageRunFlags.Hole))
        {
            if (flags.HasFlag(PageRunFlags.Lz4))
            {
                throw new ImageDefect($"{run} is both a hole and compressed (flags 0x{runFlags:x}); a hole has no data to compress");
            }
            // A full image has no base for "no longer in memory" to differ from.
            if (imageKind != ImageKind.Incremental)
            {
                throw new ImageDefect($"{run} is a hole run, which only an incremental image may have");
            }

            if (pagesOff != 0 || storedLen != 0 || crc != 0)
            {
                throw new ImageDefect($"{run} is a hole run but has pages_off {pagesOff}, stored_len {storedLen} and crc 0x{crc:x8}; a hole has no data and all three must be 0");
            }

            return;
        }
        if (flags.HasFlag(PageRunFlags.Lz4))
        {
            // Bounded so that a reader decodes a compressed run whole, in a buffer of fixed size.
            if (npages > Lz4RunPages)
            {
                throw new ImageDefect($"{run} is compressed over {npages} pages; a compressed run covers at most {Lz4RunPages}");
            }

            if (pagesOff % Lz4RunAlignment != 0)
            {
                throw new ImageDefect($"{run} is compressed at pages_off {pagesOff}, which is not a multiple of {Lz4RunAlignment}");
            }

            if (storedLen == 0 || storedLen > Lz4Bound(bytes))
            {
                throw new ImageDefect($"{run} is compressed into stored_len {storedLen}; an LZ4 block of {npages} pages is 1 to {Lz4Bound(bytes)} bytes");
            }
        }
        else
        {
            if (pagesOff % PageSize != 0)
            {
                throw new ImageDefect($"{run} has pages_off {pagesOff}, which is not a multiple of {PageSize}");
            }

            if (storedLen != bytes)
            {
                throw new ImageDefect($"{run} has stored_len {storedLen}; a raw run of {npages} pages stores exactly {bytes} bytes");
            }
        }
        if (pagesOff > pagesLen || storedLen > pagesLen - pagesOff)
        {
            throw new ImageDefect($"{run} has {storedLen} bytes at pages_off {pagesOff}, past the end of the {pagesLen}-byte .pages file");
        }
    }

    private static FileRecord ParseFile(ReadOnlySpan<byte> p, string context)
    {
        RequireAtLeast(p, FileSize, "us_rec_file", context);
        var r = new FieldReader(p);
        ulong dev = r.U64(), inode = r.U64(), size = r.U64(), pagesOff = r.U64();
        uint crc = r.U32(), pathLen = r.U32(), flags = r.U32(), reserved = r.U32();
        ulong need = (ulong)FileSize + pathLen;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but its struct and {pathLen}-byte path need {need}");
        }

        if (pathLen == 0)
        {
            throw new ImageDefect($"{context} has an empty path");
        }

        string path = PosixString.Decode(r.Bytes((int)pathLen));
        string where = $"{context} (file {ImageLocation.OneLine(path)})";
        if (pagesOff % PageSize != 0)
        {
            throw new ImageDefect($"{where} has pages_off {pagesOff}, which is not a multiple of {PageSize}");
        }

        if (size > ulong.MaxValue - pagesOff)
        {
            throw new ImageDefect($"{where} has {size} bytes at pages_off {pagesOff}, past any file's end");
        }

        if ((flags & ~FileRecord.Unlinked) != 0)
        {
            throw new ImageDefect($"{where} has unknown flags 0x{flags:x}");
        }

        RequireZero(reserved, where);
        return new FileRecord(dev, inode, size, pagesOff, crc, path, flags);
    }

    private static TimerRecord ParseTimer(ReadOnlySpan<byte> p, string context)
    {
        RequireExactly(p, TimerSize, "us_rec_timer", context);
        var r = new FieldReader(p);
        int id = r.I32(), clockId = r.I32(), notify = r.I32(), signo = r.I32();
        ulong value = r.U64();
        int tid = r.I32();
        uint reserved = r.U32();
        ulong intervalNs = r.U64(), valueNs = r.U64();
        string where = $"{context} (timer {id})";
        if (id < 0)
        {
            throw new ImageDefect($"{where} has a negative id");
        }

        if (notify is not (TimerRecord.SigevSignal or TimerRecord.SigevNone or TimerRecord.SigevThreadId))
        {
            throw new ImageDefect($"{where} has notify {notify}, expected SIGEV_SIGNAL 0, SIGEV_NONE 1 or SIGEV_THREAD_ID 4");
        }

        if (signo is < 0 or > 64)
        {
            throw new ImageDefect($"{where} has signal number {signo}, outside 0..64");
        }

        if ((notify == TimerRecord.SigevThreadId) != (tid > 0) || tid < 0)
        {
            throw new ImageDefect($"{where} has notify {notify} and tid {tid}: a thread id goes with SIGEV_THREAD_ID, and only with it");
        }

        RequireZero(reserved, where);
        return new TimerRecord(id, clockId, notify, signo, value, tid, intervalNs, valueNs);
    }

    private static IpcRecord ParseIpc(ReadOnlySpan<byte> p, string context, ulong pagesLen)
    {
        RequireAtLeast(p, IpcSize, "us_rec_ipc", context);
        var r = new FieldReader(p);
        var kind = (IpcKind)r.U32();
        int id = r.I32(), key = r.I32();
        uint mode = r.U32(), uid = r.U32(), gid = r.U32();
        ulong size = r.U64(), msgSize = r.U64(), pagesOff = r.U64();
        uint crc = r.U32(), count = r.U32(), nameLen = r.U32(), dataLen = r.U32();
        ulong need = (ulong)IpcSize + nameLen + dataLen;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but its struct, {nameLen}-byte name and {dataLen}-byte data need {need}");
        }

        if (!Enum.IsDefined(kind))
        {
            throw new ImageDefect($"{context} has unknown IPC kind {(uint)kind}");
        }

        ReadOnlySpan<byte> data = r.Bytes((int)dataLen);
        string name = PosixString.Decode(r.Bytes((int)nameLen));
        var partial = new IpcRecord(kind, id, key, mode, uid, gid, size, msgSize, pagesOff, crc, name, [], []);
        string where = $"{context} ({partial.Describe()})";
        bool queue = kind is IpcKind.Msg or IpcKind.Mqueue;
        bool sysv = kind != IpcKind.Mqueue;
        uint modeBits = kind == IpcKind.Shm ? 0x1ff | IpcRecord.ShmDest | IpcRecord.ShmLocked : kind == IpcKind.Mqueue ? 0xfffu : 0x1ffu;
        if ((mode & ~modeBits) != 0)
        {
            throw new ImageDefect($"{where} has mode 0{Convert.ToString(mode, 8)}, with bits a {ImageNames.Of(kind)} does not have");
        }

        if (sysv ? id < 0 || nameLen != 0 : id != 0 || key != 0 || nameLen == 0 || name.Contains('/'))
        {
            throw new ImageDefect($"{where} has id {id}, key {key} and a {nameLen}-byte name: a SysV object has an id, a POSIX queue a name without '/'");
        }

        if ((kind == IpcKind.Mqueue) != (msgSize != 0) || (kind != IpcKind.Shm && (pagesOff != 0 || crc != 0)) || (!queue && count != 0))
        {
            throw new ImageDefect($"{where} has fields that belong to another kind of object (msg_size {msgSize}, pages_off {pagesOff}, crc 0x{crc:x8}, count {count})");
        }

        return kind switch
        {
            IpcKind.Shm => ParseShm(partial, where, pagesLen, dataLen),
            IpcKind.Sem => partial with { SemValues = ParseSemValues(data, size, where) },
            _ => partial with { Messages = ParseMessages(data, count, partial, where) },
        };
    }

    private static IpcRecord ParseShm(IpcRecord shm, string where, ulong pagesLen, uint dataLen)
    {
        if (dataLen != 0)
        {
            throw new ImageDefect($"{where} carries {dataLen} data bytes; a segment's contents are in .pages");
        }

        if (shm.PagesOff % PageSize != 0)
        {
            throw new ImageDefect($"{where} has pages_off {shm.PagesOff}, which is not a multiple of {PageSize}");
        }

        if (shm.PagesOff > pagesLen || shm.Size > pagesLen - shm.PagesOff)
        {
            throw new ImageDefect($"{where} has {shm.Size} bytes at pages_off {shm.PagesOff}, past the end of the {pagesLen}-byte .pages file");
        }

        return shm;
    }

    private static ushort[] ParseSemValues(ReadOnlySpan<byte> data, ulong nsems, string where)
    {
        if (nsems > (ulong)data.Length || (ulong)data.Length != nsems * 2)
        {
            throw new ImageDefect($"{where} has {nsems} semaphores but {data.Length} bytes of values, not {nsems * 2}");
        }

        var values = new ushort[nsems];
        var r = new FieldReader(data);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = r.U16();
            if (values[i] > SemaphoreMax)
            {
                throw new ImageDefect($"{where} has semaphore {i} at {values[i]}, above the largest value {SemaphoreMax}");
            }
        }
        return values;
    }

    /// <summary>SEMVMX: the largest value of a SysV semaphore.</summary>
    private const int SemaphoreMax = 32767;

    /// <summary>MQ_PRIO_MAX: POSIX queue priorities are below it.</summary>
    private const long QueuePriorityLimit = 32768;

    private static IpcMessage[] ParseMessages(ReadOnlySpan<byte> data, uint count, IpcRecord queue, string where)
    {
        if (queue.Kind == IpcKind.Mqueue && count > queue.Size)
        {
            throw new ImageDefect($"{where} holds {count} messages, more than its mq_maxmsg {queue.Size}");
        }

        // Each message takes at least its header: a count beyond that is a lie, not an allocation.
        if (count > (uint)(data.Length / IpcMessageSize))
        {
            throw new ImageDefect($"{where} claims {count} messages but has {data.Length} bytes of data");
        }

        var messages = new IpcMessage[count];
        int offset = 0;
        for (int i = 0; i < messages.Length; i++)
        {
            if (data.Length - offset < IpcMessageSize)
            {
                throw new ImageDefect($"{where} message {i} is cut off: its data ends after {data.Length} bytes");
            }

            var r = new FieldReader(data.Slice(offset, IpcMessageSize));
            long type = r.I64();
            uint len = r.U32(), reserved = r.U32();
            long padded = Align(len);
            if (padded > data.Length - offset - IpcMessageSize)
            {
                throw new ImageDefect($"{where} message {i} claims {len} bytes but only {data.Length - offset - IpcMessageSize} remain");
            }

            RequireZero(reserved, $"{where} message {i}");
            bool typeOk = queue.Kind == IpcKind.Msg ? type > 0 : type is >= 0 and < QueuePriorityLimit;
            if (!typeOk || (queue.Kind == IpcKind.Mqueue && len > queue.MsgSize))
            {
                throw new ImageDefect($"{where} message {i} has type or priority {type} and {len} bytes, which the queue cannot hold");
            }

            ReadOnlySpan<byte> text = data.Slice(offset + IpcMessageSize, (int)len);
            if (data.Slice(offset + IpcMessageSize + (int)len, (int)(padded - len)).ContainsAnyExcept((byte)0))
            {
                throw new ImageDefect($"{where} message {i} has nonzero padding");
            }

            messages[i] = new IpcMessage(type, text.ToArray());
            offset += IpcMessageSize + (int)padded;
        }
        if (offset != data.Length)
        {
            throw new ImageDefect($"{where} has {data.Length - offset} bytes after its {count} messages");
        }

        return messages;
    }

    private static IReadOnlyList<MemoryAdvice> ParseMadvice(ReadOnlySpan<byte> p, string context)
    {
        RequireAtLeast(p, MadviceHeaderSize, "us_rec_madvice", context);
        var r = new FieldReader(p);
        uint count = r.U32(), reserved = r.U32();
        ulong need = MadviceHeaderSize + (ulong)count * MadviceSize;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but {count} ranges need {need}");
        }

        RequireZero(reserved, context);
        var ranges = new MemoryAdvice[count];
        ulong previousEnd = 0;
        for (int i = 0; i < ranges.Length; i++)
        {
            ulong start = r.U64(), end = r.U64();
            uint flags = r.U32(), entryReserved = r.U32();
            string where = $"{context} range {i} (0x{start:x}-0x{end:x})";
            if (start % PageSize != 0 || end % PageSize != 0 || start >= end || start < previousEnd)
            {
                throw new ImageDefect($"{where} is not a nonempty page-aligned range above the previous one");
            }

            var advice = (MemoryAdviceFlags)flags;
            if (flags == 0 || (flags & ~(uint)MemoryAdvice.AllFlags) != 0 || (advice.HasFlag(MemoryAdviceFlags.LockOnFault) && !advice.HasFlag(MemoryAdviceFlags.Locked)))
            {
                throw new ImageDefect($"{where} has flags 0x{flags:x}: none, unknown ones, or lock-on-fault without locked");
            }

            RequireZero(entryReserved, where);
            ranges[i] = new MemoryAdvice(start, end, advice);
            previousEnd = end;
        }
        return ranges;
    }

    private static ThreadRecord ParseThread(ReadOnlySpan<byte> p, string context)
    {
        RequireExactly(p, ThreadSize, "us_rec_thread", context);
        var r = new FieldReader(p);
        uint tid = r.U32(), isCheckpointThread = r.U32();
        ulong fsBase = r.U64();
        ReadOnlySpan<byte> comm = r.Bytes(ThreadCommSize);
        if (tid == 0)
        {
            throw new ImageDefect($"{context} has tid 0");
        }

        if (isCheckpointThread > 1)
        {
            throw new ImageDefect($"{context} has is_checkpoint_thread {isCheckpointThread}, expected 0 or 1");
        }

        int nul = comm.IndexOf((byte)0);
        return new ThreadRecord(tid, isCheckpointThread == 1, fsBase, PosixString.Decode(nul < 0 ? comm : comm[..nul]));
    }

    private static FdRecord ParseFd(ReadOnlySpan<byte> p, string context)
    {
        RequireAtLeast(p, FdSize, "us_rec_fd", context);
        var r = new FieldReader(p);
        int fd = r.I32();
        uint fdFlags = r.U32(), kind = r.U32(), openFlags = r.U32();
        ulong pos = r.U64(), dev = r.U64(), inode = r.U64();
        uint mode = r.U32(), pathLen = r.U32();
        var aux = new FdAux(r.U64(), r.U64(), r.U64(), r.U64());
        uint dataLen = r.U32(), reserved = r.U32();
        ulong need = (ulong)FdSize + pathLen + dataLen;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but its struct, {pathLen}-byte path and {dataLen}-byte data need {need}");
        }

        string where = $"{context} (fd {fd})";
        var fdKind = (FdKind)kind;
        if (fd < 0)
        {
            throw new ImageDefect($"{where} is negative");
        }

        if (!Enum.IsDefined(fdKind))
        {
            throw new ImageDefect($"{where} has unknown kind {kind}");
        }

        if ((fdFlags & ~FdRecord.CloseOnExec) != 0)
        {
            throw new ImageDefect($"{where} has unknown fd_flags 0x{fdFlags:x}");
        }

        if (dataLen != 0 && !FdRecord.CarriesData(fdKind))
        {
            throw new ImageDefect($"{where} is a {ImageNames.Of(fdKind)} but carries {dataLen} data bytes");
        }

        if (fdKind == FdKind.Epoll && dataLen % EpollTargetSize != 0)
        {
            throw new ImageDefect($"{where} has {dataLen} bytes of epoll targets, not a multiple of {EpollTargetSize}");
        }

        if (fdKind == FdKind.PtyMaster)
        {
            CheckPtyState(p.Slice(FdSize + (int)pathLen, (int)dataLen), where);
        }

        RequireZero(reserved, where);
        string path = PosixString.Decode(r.Bytes((int)pathLen));
        ReadOnlySpan<byte> data = r.Bytes((int)dataLen);
        if (FdRecord.HasRecordBoundaries(fdKind))
        {
            QueuedRecords.Decode(data, where);
        }
        else if (fdKind == FdKind.Tcp && dataLen != 0)
        {
            if (aux.IsListening)
            {
                throw new ImageDefect($"{where} is a listening TCP socket but carries {dataLen} bytes of connection state");
            }

            TcpConnection.Decode(data, where);
        }

        return new FdRecord(fd, fdFlags, fdKind, openFlags, pos, dev, inode, mode, path, aux, data.ToArray());
    }

    /// <summary>A pty master's data: its state, then exactly the bytes it says are queued.</summary>
    private static void CheckPtyState(ReadOnlySpan<byte> data, string where)
    {
        if (data.Length < PtyStateSize)
        {
            throw new ImageDefect($"{where} is a pty master with {data.Length} data bytes, shorter than the {PtyStateSize}-byte us_pty_state");
        }

        PtyState state = PtyState.Decode(data);
        if ((state.Flags & ~(PtyState.Locked | PtyState.Packet)) != 0)
        {
            throw new ImageDefect($"{where} has unknown pty flags 0x{state.Flags:x}");
        }

        ulong need = (ulong)PtyStateSize + state.ToSlaveLen + state.ToMasterLen;
        if (need != (ulong)data.Length)
        {
            throw new ImageDefect($"{where} has {data.Length} data bytes but its pty state and queued bytes ({state.ToSlaveLen} + {state.ToMasterLen}) need {need}");
        }
    }

    private static IReadOnlyList<SigactionEntry> ParseSigact(ReadOnlySpan<byte> p, string context)
    {
        RequireAtLeast(p, SigactHeaderSize, "us_rec_sigact", context);
        var r = new FieldReader(p);
        uint count = r.U32(), reserved = r.U32();
        ulong need = SigactHeaderSize + (ulong)count * SigactionSize;
        if (need != (ulong)p.Length)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes but {count} sigactions need {need}");
        }

        RequireZero(reserved, context);

        var entries = new SigactionEntry[count];
        var seen = new HashSet<uint>();
        for (int i = 0; i < entries.Length; i++)
        {
            uint signo = r.U32(), entryReserved = r.U32();
            if (signo is < 1 or > 64)
            {
                throw new ImageDefect($"{context} entry {i} has signal number {signo}, outside 1..64");
            }

            if (!seen.Add(signo))
            {
                throw new ImageDefect($"{context} repeats signal {signo}");
            }

            RequireZero(entryReserved, $"{context} entry {i}");
            entries[i] = new SigactionEntry(signo, r.U64(), r.U64(), r.U64(), r.U64());
        }
        return entries;
    }

    private static MiscRecord ParseMisc(ReadOnlySpan<byte> p, string context)
    {
        RequireExactly(p, MiscSize, "us_rec_misc", context);
        var r = new FieldReader(p);
        var itimers = new ItimerValue[ItimerCount];
        for (int i = 0; i < itimers.Length; i++)
        {
            itimers[i] = new ItimerValue(r.I64(), r.I64(), r.I64(), r.I64());
        }

        var rlimits = new ulong[RlimitCount];
        for (int i = 0; i < rlimits.Length; i++)
        {
            rlimits[i] = r.U64();
        }

        return new MiscRecord(itimers, rlimits, r.U64());
    }

    private static void RequireAtLeast(ReadOnlySpan<byte> p, int size, string type, string context)
    {
        if (p.Length < size)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes, shorter than the {size}-byte {type}");
        }
    }

    private static void RequireExactly(ReadOnlySpan<byte> p, int size, string type, string context)
    {
        if (p.Length != size)
        {
            throw new ImageDefect($"{context} is {p.Length} bytes, a {type} is {size}");
        }
    }

    /// <summary>Reserved fields are zero in this version, which keeps them usable by a later version.</summary>
    private static void RequireZero(uint reserved, string context)
    {
        if (reserved != 0)
        {
            throw new ImageDefect($"{context} has a nonzero reserved field");
        }
    }
}
