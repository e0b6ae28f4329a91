using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Understudy.Images;

/// <summary>
/// Opens files for writing in image and log directories without following a symbolic link in
/// the last component (O_NOFOLLOW): a link planted there makes the open fail, so the agent (root)
/// never writes through it into another file. .NET's own file APIs follow links.
/// </summary>
public static class NoFollowFile
{
    /// <summary>Creates (or truncates) <paramref name="path"/> for writing, with <paramref name="mode"/> if new.</summary>
    /// <exception cref="IOException">the file cannot be opened; a symbolic link says so.</exception>
    public static SafeFileHandle Create(string path, UnixFileMode mode) => Open(path, Libc.OWronly | Libc.OCreat | Libc.OTrunc, mode);

    /// <summary>Opens <paramref name="path"/> for appending (O_APPEND; readable too), created with <paramref name="mode"/> if missing.</summary>
    /// <exception cref="IOException">the file cannot be opened; a symbolic link says so.</exception>
    public static SafeFileHandle Append(string path, UnixFileMode mode) => Open(path, Libc.ORdwr | Libc.OCreat | Libc.OAppend, mode);

    private static SafeFileHandle Open(string path, int flags, UnixFileMode mode)
    {
        int fd = Libc.Open(path, flags | Libc.ONoFollow | Libc.OCloexec, (uint)mode);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException(
                errno == Libc.ELoop
                    ? $"{path} is a symbolic link, which is refused there: remove it (nothing was written through it)"
                    : $"cannot open {path}: {Marshal.GetPInvokeErrorMessage(errno)}",
                errno);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
