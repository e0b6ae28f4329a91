using System.Net.Sockets;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>Preparing and protecting the files that listening Unix sockets live in.</summary>
internal static class UnixSocketFile
{
    /// <summary>sun_path is 108 bytes including the terminating NUL.</summary>
    private const int MaxPathBytes = 107;

    public const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Makes <paramref name="path"/> bindable: creates its directory (0700) if missing, and
    /// removes a socket left behind by an agent that died. A socket that still answers belongs
    /// to a running agent, and anything that is not a socket is never deleted.
    /// </summary>
    public static void PrepareForBind(string path)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(path) > MaxPathBytes)
        {
            throw AgentException.InvalidArgument(
                $"socket path {path} is longer than {MaxPathBytes} bytes, the limit of Unix sockets; choose a shorter path");
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory) && !Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, PrivateDirectory);
        }

        if (!File.Exists(path) && !Directory.Exists(path))
        {
            return;
        }
        if (!Libc.IsSocket(path))
        {
            throw AgentException.FailedPrecondition($"{path} exists and is not a socket; remove it or choose another path");
        }
        if (IsAnswering(path))
        {
            throw AgentException.FailedPrecondition(
                $"another process is already listening on {path}; stop that guest agent first or choose another socket");
        }
        File.Delete(path);
    }

    private static bool IsAnswering(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
