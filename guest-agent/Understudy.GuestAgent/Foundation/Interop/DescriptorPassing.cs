using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>
/// Sends bytes with open descriptors attached (SCM_RIGHTS) on a Unix stream socket, which .NET
/// has no managed call for. The descriptors go with the first sendmsg, which starts the line: a
/// receiver's recvmsg stops after the bytes that carried them, so they belong to the last line that
/// starts in what it read (docs/protocol.md).
/// </summary>
internal static class DescriptorPassing
{
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int MsgNoSignal = 0x4000;
    private const int EIntr = 4;
    private const int EAgain = 11;
    // 64-bit Linux: struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t
    // iovlen; void *control; size_t controllen; int flags; }, struct iovec { void *base; size_t
    // len; }, struct cmsghdr { size_t len; int level; int type; } followed by the ints.
    private const int MsgHeaderBytes = 56;
    private const int IovBytes = 16;
    private const int CmsgHeaderBytes = 16;

    [DllImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static extern nint SendMsgNative(int fd, nint msg, int flags);

    /// <summary>
    /// Sends all of <paramref name="bytes"/>, the descriptors with the first part. The socket may
    /// be non-blocking (.NET makes it so): a full send buffer is waited out, until
    /// <paramref name="cancellationToken"/> gives up on a peer that does not read.
    /// </summary>
    public static void Send(Socket socket, byte[] bytes, IReadOnlyList<SafeHandle> descriptors, CancellationToken cancellationToken)
    {
        var held = new List<SafeHandle>(descriptors.Count + 1);
        var data = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        var controlBytes = CmsgHeaderBytes + ((descriptors.Count * sizeof(int) + 7) & ~7);
        var size = MsgHeaderBytes + IovBytes + controlBytes;
        var memory = Marshal.AllocHGlobal(size);
        try
        {
            Marshal.Copy(new byte[size], 0, memory, size);
            var (msg, iov, control) = (memory, memory + MsgHeaderBytes, memory + MsgHeaderBytes + IovBytes);
            Marshal.WriteInt64(control, CmsgHeaderBytes + descriptors.Count * sizeof(int));
            Marshal.WriteInt32(control, 8, SolSocket);
            Marshal.WriteInt32(control, 12, ScmRights);
            foreach (var (handle, i) in descriptors.Select((h, i) => (h, i)))
            {
                var added = false;
                handle.DangerousAddRef(ref added);
                held.Add(handle);
                Marshal.WriteInt32(control, CmsgHeaderBytes + i * sizeof(int), (int)handle.DangerousGetHandle());
            }
            Marshal.WriteIntPtr(msg, 16, iov);
            Marshal.WriteInt64(msg, 24, 1);
            Marshal.WriteIntPtr(msg, 32, control);
            Marshal.WriteInt64(msg, 40, controlBytes);
            // Held, so that a close meanwhile cannot hand its number to another socket.
            var socketAdded = false;
            socket.SafeHandle.DangerousAddRef(ref socketAdded);
            held.Add(socket.SafeHandle);
            var fd = (int)socket.SafeHandle.DangerousGetHandle();
            for (var sent = 0; sent < bytes.Length;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Marshal.WriteIntPtr(iov, 0, data.AddrOfPinnedObject() + sent);
                Marshal.WriteInt64(iov, 8, bytes.Length - sent);
                var n = SendMsgNative(fd, msg, MsgNoSignal);
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == EAgain)
                    {
                        socket.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectWrite);
                    }
                    else if (errno != EIntr)
                    {
                        throw new IOException($"sendmsg with descriptors failed: errno {errno}");
                    }
                    continue;
                }
                sent += (int)n;
                Marshal.WriteIntPtr(msg, 32, 0);   // the descriptors went with the first part
                Marshal.WriteInt64(msg, 40, 0);
            }
        }
        finally
        {
            Marshal.FreeHGlobal(memory);
            data.Free();
            foreach (var handle in held)
            {
                handle.DangerousRelease();
            }
        }
    }
}
