using System.Buffers.Binary;
using System.Text;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// Reads the descriptor records of a &lt;vpid&gt;.meta image (native/include/us_image.h).
/// Used only when `hactl images inspect --json` does not show the descriptors.
/// </summary>
public static class MetaReader
{
    private const int RecFd = 4;           // US_REC_FD
    private const int FdRecordSize = 88;   // sizeof(struct us_rec_fd)

    public sealed record FdRecord(int Fd, int Kind, ulong Pos, string Path);

    public static List<FdRecord> ReadFds(string metaPath)
    {
        var b = File.ReadAllBytes(metaPath);
        if (b.Length < 64 || Encoding.ASCII.GetString(b, 0, 8) != "USTDMETA")
        {
            throw new InvalidDataException($"{metaPath}: not an Understudy meta image");
        }

        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(12));
        ulong recordsLen = BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(24));
        long off = headerSize, end = Math.Min(b.Length, (long)headerSize + (long)recordsLen);
        var fds = new List<FdRecord>();
        while (off + 8 <= end)
        {
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)off));
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)off + 4));
            long payload = off + 8;
            if (payload + len > end)
            {
                break;
            }

            if (type == RecFd && len >= FdRecordSize)
            {
                var p = b.AsSpan((int)payload, (int)len);
                int fd = BinaryPrimitives.ReadInt32LittleEndian(p);
                int kind = (int)BinaryPrimitives.ReadUInt32LittleEndian(p[8..]);
                ulong pos = BinaryPrimitives.ReadUInt64LittleEndian(p[16..]);
                int pathLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(p[44..]);
                string path = pathLen > 0 && FdRecordSize + pathLen <= len
                    ? Encoding.UTF8.GetString(p.Slice(FdRecordSize, pathLen)).TrimEnd('\0')
                    : "";
                fds.Add(new FdRecord(fd, kind, pos, path));
            }
            off = payload + ((len + 7) & ~7u);
        }
        return fds;
    }
}
