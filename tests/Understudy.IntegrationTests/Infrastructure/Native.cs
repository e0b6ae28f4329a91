using System.Runtime.InteropServices;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>The few libc calls the tests need, and /proc readers.</summary>
public static class Native
{
    public const int SIGKILL = 9;
    public const int SIGUSR1 = 10;
    public const int SIGUSR2 = 12;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;
    private const int PR_SET_CHILD_SUBREAPER = 36;
    private const int WNOHANG = 1;

    [DllImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static extern int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SysKill(int pid, int sig);

    [DllImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static extern int SysWaitPid(int pid, out int status, int options);

    [DllImport("libc", EntryPoint = "getpid")]
    public static extern int GetPid();

    [DllImport("libc", EntryPoint = "getpgrp")]
    public static extern int GetPgrp();

    private static readonly object SubreaperLock = new();
    private static bool _subreaper;

    /// <summary>
    /// Makes this test process a child subreaper, so that every process the agent
    /// starts (and orphans) stays below us, where the sweeper can find and reap it.
    /// PID 1 of the machines the tests run on can be slow to reap orphans.
    /// </summary>
    public static void BecomeSubreaper()
    {
        lock (SubreaperLock)
        {
            if (_subreaper)
            {
                return;
            }

            if (Prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
            {
                throw new InvalidOperationException(
                    $"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {Marshal.GetLastPInvokeError()}");
            }

            _subreaper = true;
        }
    }

    /// <summary>kill(2); true if the signal was sent.</summary>
    public static bool Kill(int pid, int sig) => pid > 0 && SysKill(pid, sig) == 0;

    /// <summary>kill(-pgid, sig).</summary>
    public static bool KillGroup(int pgid, int sig) => pgid > 1 && SysKill(-pgid, sig) == 0;

    /// <summary>Reaps one exited child without blocking; true if it was reaped.</summary>
    public static bool TryReap(int pid) => SysWaitPid(pid, out _, WNOHANG) == pid;

    /// <summary>One line of /proc/PID/stat.</summary>
    public sealed record ProcStat(int Pid, string Comm, char State, int PPid, int Pgid);

    public static ProcStat? ReadStat(int pid)
    {
        string text;
        try { text = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        // comm may hold spaces and parentheses: fields resume after the last ')'.
        int open = text.IndexOf('('), close = text.LastIndexOf(')');
        if (open < 0 || close < open)
        {
            return null;
        }

        var rest = text[(close + 2)..].Split(' ');
        if (rest.Length < 3)
        {
            return null;
        }

        return new ProcStat(pid, text[(open + 1)..close], rest[0][0], int.Parse(rest[1]), int.Parse(rest[2]));
    }

    /// <summary>True while the process exists and is not a zombie.</summary>
    public static bool IsRunning(int pid)
    {
        var st = ReadStat(pid);
        return st is not null && st.State != 'Z' && st.State != 'X';
    }

    /// <summary>
    /// What keeps a process from dying, for a failure message: each of its threads with its
    /// state, wait channel, system call (/proc/PID/task/TID/syscall) and kernel stack
    /// (/proc/PID/task/TID/stack, which only root may read), and the signals pending in it.
    /// </summary>
    public static string DescribeThreads(int pid)
    {
        var text = new System.Text.StringBuilder();
        var st = ReadStat(pid);
        if (st is null)
        {
            return $"pid {pid}: gone\n";
        }

        text.Append($"pid {pid} ({st.Comm}) state {st.State} ppid {st.PPid}, {PendingSignals($"/proc/{pid}/status")}\n");
        IEnumerable<string> tasks;
        try { tasks = Directory.EnumerateDirectories($"/proc/{pid}/task").ToList(); }
        catch (IOException) { tasks = []; }
        catch (UnauthorizedAccessException) { tasks = []; }
        foreach (var task in tasks)
        {
            var tid = Path.GetFileName(task);
            var ts = ReadStat(int.Parse(tid));
            text.Append($"  thread {tid} ({ts?.Comm ?? "?"}) state {ts?.State ?? '?'} " +
                        $"wchan {ProcText($"{task}/wchan").Trim()} {PendingSignals($"{task}/status")}\n");
            text.Append($"    syscall: {ProcText($"{task}/syscall").Trim()}\n");
            foreach (var frame in ProcText($"{task}/stack").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                text.Append($"    {frame}\n");
            }
        }
        return text.ToString();
    }

    /// <summary>The SigPnd and ShdPnd lines of a status file, in one.</summary>
    private static string PendingSignals(string statusFile) =>
        string.Join(" ", ProcText(statusFile).Split('\n')
            .Where(l => l.StartsWith("SigPnd:", StringComparison.Ordinal) || l.StartsWith("ShdPnd:", StringComparison.Ordinal))
            .Select(l => string.Join(' ', l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))));

    private static string ProcText(string path)
    {
        try { return File.ReadAllText(path); }
        catch (IOException e) { return $"<{e.Message}>"; }
        catch (UnauthorizedAccessException e) { return $"<{e.Message}>"; }
    }

    /// <summary>Every process visible in /proc.</summary>
    public static Dictionary<int, ProcStat> Snapshot()
    {
        var all = new Dictionary<int, ProcStat>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }

            var st = ReadStat(pid);
            if (st is not null)
            {
                all[pid] = st;
            }
        }
        return all;
    }

    /// <summary>The executable of a process, or null.</summary>
    public static string? ExePath(int pid)
    {
        try { return new FileInfo($"/proc/{pid}/exe").LinkTarget; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
