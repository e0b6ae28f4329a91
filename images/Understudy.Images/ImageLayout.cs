namespace Understudy.Images;

/// <summary>
/// Sizes of the C structs of native/include/us_image.h (x86_64 and aarch64 Linux, gcc), as
/// measured with sizeof. docs/image-format.md lists every field offset.
/// </summary>
public static class ImageLayout
{
    public const int PageSize = 4096;
    public const uint FormatVersion = 3;

    /// <summary>"USTDMETA", without terminator.</summary>
    public static ReadOnlySpan<byte> Magic => "USTDMETA"u8;

    public const int HeaderSize = 64;            // struct us_meta_header
    public const int HeaderCrcOffset = 60;       // header_crc covers bytes [0, 60)
    public const int RecordHeaderSize = 8;       // struct us_rec_hdr
    public const int RecordAlignment = 8;        // US_REC_ALIGN
    public const int ProcSize = 152;             // struct us_rec_proc
    public const int VmaSize = 72;               // struct us_rec_vma
    public const int PageRunSize = 40;           // struct us_page_run
    public const int ThreadSize = 32;            // struct us_rec_thread
    public const int ThreadCommSize = 16;        // us_rec_thread.comm
    public const int FdSize = 88;                // struct us_rec_fd
    public const int EpollTargetSize = 16;       // struct us_epoll_target
    public const int PtyStateSize = 64;          // struct us_pty_state
    public const int TcpConnSize = 104;          // struct us_tcp_conn
    public const int SigactionSize = 40;         // struct us_sigact
    public const int SigactHeaderSize = 8;       // struct us_rec_sigact
    public const int MiscSize = 232;             // struct us_rec_misc
    public const int FileSize = 48;              // struct us_rec_file
    public const int TimerSize = 48;             // struct us_rec_timer
    public const int IpcSize = 64;               // struct us_rec_ipc
    public const int IpcMessageSize = 16;        // struct us_ipc_msg
    public const int MadviceHeaderSize = 8;      // struct us_rec_madvice
    public const int MadviceSize = 24;           // struct us_madvice
    public const int MmFieldCount = 11;          // US_MM_COUNT
    public const int RlimitCount = 16;
    public const int ItimerCount = 3;

    /// <summary>Most pages one compressed run covers (US_LZ4_RUN_PAGES).</summary>
    public const int Lz4RunPages = 64;

    /// <summary>Alignment of a compressed run's bytes in .pages; raw runs and file contents are page-aligned.</summary>
    public const int Lz4RunAlignment = 8;

    /// <summary>Largest LZ4 block for <paramref name="bytes"/> input bytes (US_LZ4_BOUND): incompressible data grows by 1/255 plus 16.</summary>
    public static ulong Lz4Bound(ulong bytes) => bytes + bytes / 255 + 16;

    /// <summary>Record payloads are followed by zero padding up to this multiple (US_REC_ALIGN).</summary>
    public static long Align(long length) => (length + RecordAlignment - 1) & ~(long)(RecordAlignment - 1);
}
