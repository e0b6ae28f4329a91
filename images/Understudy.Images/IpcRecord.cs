namespace Understudy.Images;

/// <summary>enum us_ipc_kind.</summary>
public enum IpcKind : uint
{
    Shm = 1,
    Sem = 2,
    Msg = 3,
    Mqueue = 4,
}

/// <summary>
/// struct us_rec_ipc and its data and name: an IPC object of the group's IPC namespace, a SysV
/// shared memory segment, semaphore set or message queue, or a POSIX message queue. One member's
/// image of a checkpoint holds them all; us-init makes them again, under the same ids and names,
/// before any process of a restore starts.
/// </summary>
/// <param name="Id">SysV: the shmid, semid or msqid; a POSIX queue: 0.</param>
/// <param name="Key">SysV: its key, 0 for IPC_PRIVATE; a POSIX queue: 0.</param>
/// <param name="Mode">Permission bits; a segment adds <see cref="ShmDest"/> (marked for removal) and <see cref="ShmLocked"/>.</param>
/// <param name="Size">Shm: bytes; sem: semaphores; msg: msg_qbytes; mqueue: mq_maxmsg.</param>
/// <param name="MsgSize">Mqueue: mq_msgsize; otherwise 0.</param>
/// <param name="PagesOff">Shm: where its contents are in .pages (4096-aligned, <see cref="Size"/> bytes); otherwise 0.</param>
/// <param name="Crc">Shm: CRC-32C of the contents; otherwise 0.</param>
/// <param name="Name">Mqueue: its name without the leading '/'; otherwise empty.</param>
/// <param name="SemValues">Sem: one value per semaphore; otherwise empty.</param>
/// <param name="Messages">Msg and mqueue: the queued messages, oldest first (as a receiver gets them); otherwise empty.</param>
public sealed record IpcRecord(
    IpcKind Kind,
    int Id,
    int Key,
    uint Mode,
    uint Uid,
    uint Gid,
    ulong Size,
    ulong MsgSize,
    ulong PagesOff,
    uint Crc,
    string Name,
    IReadOnlyList<ushort> SemValues,
    IReadOnlyList<IpcMessage> Messages)
{
    /// <summary>SHM_DEST: the segment was marked for removal and is still attached.</summary>
    public const uint ShmDest = 0x200;

    /// <summary>SHM_LOCKED: the segment was locked in memory (SHM_LOCK).</summary>
    public const uint ShmLocked = 0x400;

    /// <summary>The bytes of .pages a segment's contents take, padding excluded.</summary>
    public ulong ContentsEnd => PagesOff + Size;

    /// <summary>How errors and inspect name the object.</summary>
    public string Describe() => Kind switch
    {
        IpcKind.Shm => $"SysV shared memory segment {Id} (key {Key})",
        IpcKind.Sem => $"SysV semaphore set {Id} (key {Key})",
        IpcKind.Msg => $"SysV message queue {Id} (key {Key})",
        IpcKind.Mqueue => $"POSIX message queue /{ImageLocation.OneLine(Name)}",
        _ => $"IPC object of unknown kind {(uint)Kind}",
    };
}

/// <summary>struct us_ipc_msg and its bytes: a SysV message (its mtype, > 0) or a POSIX one (its priority).</summary>
public sealed record IpcMessage(long Type, byte[] Text);
