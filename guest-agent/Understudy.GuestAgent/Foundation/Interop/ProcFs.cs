namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>What /proc says about a host process.</summary>
internal static class ProcFs
{
    /// <summary>readlink /proc/PID/exe, or "" when the process is gone or not ours to see.</summary>
    public static string ExecutablePath(int hostPid)
    {
        if (hostPid <= 0)
        {
            return "";
        }
        try
        {
            return new FileInfo($"/proc/{hostPid}/exe").LinkTarget ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private const uint ProcessExiting = 0x4;   // PF_EXITING in /proc/PID/stat's flags

    /// <summary>
    /// The host pids of the processes in the pid namespace whose PID 1 is
    /// <paramref name="initHostPid"/>, without it: every process of a group, registered or not.
    /// Zombies, exiting processes and the interceptor's image writers ("us-writer") are left out.
    /// </summary>
    public static IReadOnlyList<int> ProcessesInNamespaceOf(int initHostPid)
    {
        if (PidNamespace(initHostPid) is not { } ns)
        {
            return [];
        }
        var found = new List<int>();
        foreach (var dir in EnumerateProcessDirectories())
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && pid != initHostPid
                && PidNamespace(pid) == ns && IsLive(pid, out var name) && name != "us-writer")
            {
                found.Add(pid);
            }
        }
        found.Sort();
        return found;
    }

    /// <summary>
    /// What the processes of the pid namespace whose PID 1 is <paramref name="initHostPid"/> (it
    /// included, exiting ones and image writers too, zombies not) wait on: for each thread, its
    /// state, wait channel, system call and kernel stack (/proc/PID/task/TID/stack, root only).
    /// For the log, when a kill -9 does not end a group.
    /// </summary>
    public static string DescribeNamespaceWaits(int initHostPid)
    {
        if (PidNamespace(initHostPid) is not { } ns)
        {
            return "";
        }
        var text = new System.Text.StringBuilder();
        foreach (var dir in EnumerateProcessDirectories())
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || PidNamespace(pid) != ns
                || ReadText($"{dir}/stat") is not { } stat || StateOf($"{dir}/stat") is null or 'Z' or 'X' or 'x')
            {
                continue;
            }
            text.Append($"{stat[..(stat.LastIndexOf(')') + 1)]}\n");
            foreach (var task in Tasks(dir))
            {
                text.Append($"  thread {Path.GetFileName(task)} state {StateOf($"{task}/stat")} ")
                    .Append($"wchan {ReadText($"{task}/wchan")?.Trim()} syscall {ReadText($"{task}/syscall")?.Trim()}\n");
                foreach (var frame in (ReadText($"{task}/stack") ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    text.Append($"    {frame}\n");
                }
            }
        }
        return text.ToString();
    }

    private static IReadOnlyList<string> Tasks(string processDir)
    {
        try
        {
            return Directory.EnumerateDirectories($"{processDir}/task").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The process's pid in its own (innermost) pid namespace, from NSpid; 0 when unknown.</summary>
    public static int InnermostPid(int hostPid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{hostPid}/status"))
            {
                if (line.StartsWith("NSpid:", StringComparison.Ordinal))
                {
                    var last = line.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[^1];
                    return int.TryParse(last, System.Globalization.CultureInfo.InvariantCulture, out var pid) ? pid : 0;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return 0;
    }

    /// <summary>The process's effective uid (the second number of Uid: in its status), or null when unknown.</summary>
    public static uint? EffectiveUid(int hostPid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{hostPid}/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            var fields = line?.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            return fields is { Length: > 2 } && uint.TryParse(fields[2], System.Globalization.CultureInfo.InvariantCulture, out var uid) ? uid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether the process runs (not a zombie, not exiting): its end is not under way.</summary>
    public static bool IsRunning(int hostPid) => hostPid > 0 && IsLive(hostPid, out _);

    /// <summary>The pid namespace the process is in (the target of /proc/PID/ns/pid), or null.</summary>
    public static string? PidNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/pid").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IEnumerable<string> EnumerateProcessDirectories()
    {
        try
        {
            return Directory.EnumerateDirectories("/proc").ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>/proc/PID/stat: "pid (comm) state ppid ... flags" (flags is the 9th field).</summary>
    private static bool IsLive(int pid, out string name)
    {
        name = "";
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
        var open = stat.IndexOf('(', StringComparison.Ordinal);
        var close = stat.LastIndexOf(')');
        if (open < 0 || close < open)
        {
            return false;
        }
        name = stat[(open + 1)..close];
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is the state, fields[6] the flags
        if (fields.Length < 7 || fields[0] is "Z" or "X" or "x")
        {
            return false;
        }
        return !uint.TryParse(fields[6], System.Globalization.CultureInfo.InvariantCulture, out var flags) || (flags & ProcessExiting) == 0;
    }

    /// <summary>
    /// The scheduler state of each thread of a host process (the letter of /proc/PID/task/TID/stat:
    /// R, S, D, T, t, Z, ...); empty when the process is gone or not ours to see.
    /// </summary>
    public static IReadOnlyList<ThreadState> ThreadStates(int hostPid)
    {
        if (hostPid <= 0)
        {
            return [];
        }
        var states = new List<ThreadState>();
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{hostPid}/task"))
            {
                if (int.TryParse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture, out var tid)
                    && StateOf(Path.Combine(task, "stat")) is { } state)
                {
                    states.Add(new ThreadState(tid, state));
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return states;
    }

    /// <summary>
    /// How many times a thread has been switched out (voluntary_ctxt_switches plus
    /// nonvoluntary_ctxt_switches of /proc/PID/task/TID/status), or null when it is gone. A thread
    /// that sleeps on and on in one wait keeps the same count; one that woke up in between does not.
    /// </summary>
    public static long? ContextSwitches(int hostPid, int tid)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{hostPid}/task/{tid}/status");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        long total = 0;
        var found = 0;
        foreach (var line in lines)
        {
            if ((line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)
                 || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                && long.TryParse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(),
                    System.Globalization.CultureInfo.InvariantCulture, out var count))
            {
                total += count;
                found++;
            }
        }
        return found == 2 ? total : null;
    }

    /// <summary>The state letter follows the command name, which is in parentheses and may hold any byte.</summary>
    private static char? StateOf(string statPath)
    {
        try
        {
            var stat = File.ReadAllText(statPath);
            var close = stat.LastIndexOf(')');
            return close >= 0 && close + 2 < stat.Length ? stat[close + 2] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
