using System.Globalization;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>
/// Only one agent may use a state directory: each holds an exclusive flock on STATE/agent.lock
/// for as long as it runs (the kernel drops it when the agent dies, however it dies). A second
/// agent is refused before it touches anything there.
/// </summary>
internal sealed class StateDirectoryLock : IDisposable
{
    private readonly FileStream _file;

    private StateDirectoryLock(FileStream file)
    {
        _file = file;
    }

    /// <exception cref="AgentException">FailedPrecondition: another agent holds it (named by its pid).</exception>
    public static StateDirectoryLock Acquire(string stateDir, string lockFile)
    {
        FileStream? file = null;
        try
        {
            file = new FileStream(lockFile, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            if (Libc.TryLockExclusive(file.SafeFileHandle))
            {
                var ours = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
                file.SetLength(0);
                file.Write(ours);
                file.Flush(flushToDisk: false);
                return new StateDirectoryLock(file);
            }
        }
        catch (IOException)
        {
            // .NET's own advisory lock on open found the file locked: the same answer.
        }
        file?.Dispose();
        var holder = Holder(lockFile);
        throw AgentException.FailedPrecondition(
            $"state directory {stateDir} is in use by another guest agent{(holder is { } pid ? $" (pid {pid})" : "")}; " +
            "stop that agent first, or give this one another --state-dir");
    }

    public void Dispose() => _file.Dispose();

    /// <summary>The pid that holds a lock on the file, from /proc/locks; null when it cannot be told.</summary>
    private static int? Holder(string lockFile)
    {
        if (Libc.Inode(lockFile) is not { } inode)
        {
            return null;
        }
        try
        {
            // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1311 0 EOF"; waiters' lines have "->" and come after.
            foreach (var line in File.ReadLines("/proc/locks"))
            {
                var tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                for (var i = 1; i < tokens.Length; i++)
                {
                    var parts = tokens[i].Split(':');
                    if (parts.Length == 3 && ulong.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ino)
                        && ino == inode && !tokens.Contains("->")
                        && int.TryParse(tokens[i - 1], NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                    {
                        return pid;
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }
}
