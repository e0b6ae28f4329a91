namespace Understudy.Images;

/// <summary>enum us_image_kind.</summary>
public enum ImageKind : uint
{
    Full = 1,
    Incremental = 2,
}

/// <summary>enum us_rec_type.</summary>
public enum RecordType : uint
{
    Proc = 1,
    Vma = 2,
    Thread = 3,
    Fd = 4,
    Sigact = 5,
    Misc = 6,
    File = 7,
    Timer = 8,
    Ipc = 9,
    Madvice = 12,
}

/// <summary>enum us_vma_kind.</summary>
public enum VmaKind : uint
{
    Anon = 1,
    File = 2,
    Shmem = 3,
    Heap = 4,
    Stack = 5,
    Vdso = 6,
    Vvar = 7,
    VvarVclock = 8,
}

/// <summary>PROT_* bits of us_rec_vma.prot.</summary>
[Flags]
public enum VmaProt : uint
{
    None = 0,
    Read = 1,
    Write = 2,
    Exec = 4,
}

/// <summary>US_VMA_F_* bits of us_rec_vma.flags.</summary>
[Flags]
public enum VmaFlags : uint
{
    None = 0,
    Shared = 1,

    /// <summary>
    /// Incremental images: the mapping's runs describe it entirely, nothing of it comes from the
    /// base image (a mapping that is new or was not tracked). In a full image every mapping is
    /// complete, flag or not.
    /// </summary>
    Complete = 2,

    /// <summary>MAP_NORESERVE: no swap space reserved; mapped so again, so that a mapping larger than memory and swap comes back.</summary>
    NoReserve = 4,
}

/// <summary>US_RUN_F_* bits of us_page_run.flags.</summary>
[Flags]
public enum PageRunFlags : uint
{
    None = 0,

    /// <summary>
    /// Incremental images: the pages are no longer in memory (zero in an anonymous mapping, the
    /// file's contents in a file mapping). No data in .pages; pages_off, stored_len and crc are 0.
    /// </summary>
    Hole = 1,

    /// <summary>
    /// The stored bytes are one LZ4 block (block format, no frame) that decodes to exactly the
    /// run's pages: at most <see cref="ImageLayout.Lz4RunPages"/> pages, 8-aligned in .pages.
    /// Never together with <see cref="Hole"/>.
    /// </summary>
    Lz4 = 2,
}

/// <summary>enum us_fd_kind.</summary>
public enum FdKind : uint
{
    File = 1,
    Dir = 2,
    Pipe = 3,
    Fifo = 4,
    UnixStream = 5,
    Chr = 6,
    Eventfd = 7,
    Timerfd = 8,
    Epoll = 9,
    Signalfd = 10,
    Coordinator = 11,
    UnixDgram = 12,
    Tcp = 13,
    Udp = 14,
    Memfd = 15,
    PtyMaster = 16,
    PtySlave = 17,
    UnixSeqpacket = 18,
    Mqueue = 19,
}

/// <summary>The lowercase names that JSON output and docs/image-format.md use for the enums.</summary>
public static class ImageNames
{
    public static string Of(ImageKind kind) => kind switch
    {
        ImageKind.Full => "full",
        ImageKind.Incremental => "incremental",
        _ => $"unknown({(uint)kind})",
    };

    public static string Of(RecordType type) => type switch
    {
        RecordType.Proc => "PROC",
        RecordType.Vma => "VMA",
        RecordType.Thread => "THREAD",
        RecordType.Fd => "FD",
        RecordType.Sigact => "SIGACT",
        RecordType.Misc => "MISC",
        RecordType.File => "FILE",
        RecordType.Timer => "TIMER",
        RecordType.Ipc => "IPC",
        RecordType.Madvice => "MADVICE",
        _ => $"unknown({(uint)type})",
    };

    public static string Of(VmaKind kind) => kind switch
    {
        VmaKind.Anon => "anon",
        VmaKind.File => "file",
        VmaKind.Shmem => "shmem",
        VmaKind.Heap => "heap",
        VmaKind.Stack => "stack",
        VmaKind.Vdso => "vdso",
        VmaKind.Vvar => "vvar",
        VmaKind.VvarVclock => "vvar_vclock",
        _ => $"unknown({(uint)kind})",
    };

    public static string Of(FdKind kind) => kind switch
    {
        FdKind.File => "file",
        FdKind.Dir => "dir",
        FdKind.Pipe => "pipe",
        FdKind.Fifo => "fifo",
        FdKind.UnixStream => "unix_stream",
        FdKind.Chr => "chr",
        FdKind.Eventfd => "eventfd",
        FdKind.Timerfd => "timerfd",
        FdKind.Epoll => "epoll",
        FdKind.Signalfd => "signalfd",
        FdKind.Coordinator => "coordinator",
        FdKind.UnixDgram => "unix_dgram",
        FdKind.Tcp => "tcp",
        FdKind.Udp => "udp",
        FdKind.Memfd => "memfd",
        FdKind.PtyMaster => "pty_master",
        FdKind.PtySlave => "pty_slave",
        FdKind.UnixSeqpacket => "unix_seqpacket",
        FdKind.Mqueue => "mqueue",
        _ => $"unknown({(uint)kind})",
    };

    public static string Of(IpcKind kind) => kind switch
    {
        IpcKind.Shm => "shm",
        IpcKind.Sem => "sem",
        IpcKind.Msg => "msg",
        IpcKind.Mqueue => "mqueue",
        _ => $"unknown({(uint)kind})",
    };

    /// <summary>The /proc/PID/maps style: "r-xp", "rw-s".</summary>
    public static string Of(VmaProt prot, VmaFlags flags) => string.Create(4, (prot, flags), static (span, v) =>
    {
        span[0] = v.prot.HasFlag(VmaProt.Read) ? 'r' : '-';
        span[1] = v.prot.HasFlag(VmaProt.Write) ? 'w' : '-';
        span[2] = v.prot.HasFlag(VmaProt.Exec) ? 'x' : '-';
        span[3] = v.flags.HasFlag(VmaFlags.Shared) ? 's' : 'p';
    });
}
