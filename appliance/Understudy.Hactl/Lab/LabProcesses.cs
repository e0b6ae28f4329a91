using System.Globalization;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Lab;

/// <summary>The lab's view of processes, through /proc.</summary>
public static class LabProcesses
{
    /// <summary>The process as it runs now (its start time), or null if there is none or it is a zombie.</summary>
    public static LabProcess? Find(int pid) =>
        Stat(pid) is { } stat && stat.State is not ('Z' or 'X') ? new LabProcess(pid, stat.StartTime) : null;

    /// <summary>Whether this very process (same pid and start time) still runs.</summary>
    public static bool IsAlive(LabProcess? process) => process is not null && Find(process.Pid) == process;

    /// <summary>The network namespace of a process, as net:[INODE], or null.</summary>
    public static string? NetNamespace(int pid)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/net").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Every us-lab process whose arguments name <paramref name="dir"/> or a path below it.</summary>
    public static IReadOnlyList<LabProcess> UsLabProcessesUnder(string dir)
    {
        var found = new List<LabProcess>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string[] argv;
            try
            {
                argv = File.ReadAllText(Path.Combine(entry, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            if (argv.Length > 1 && Path.GetFileName(argv[0]) == LabTools.UsLabProgram &&
                argv.Skip(1).Any(a => a == dir || a.StartsWith(dir + "/", StringComparison.Ordinal)) &&
                Find(pid) is { } process)
            {
                found.Add(process);
            }
        }
        return found;
    }

    /// <summary>SIGKILL to each process that is still the one recorded; returns those signalled.</summary>
    public static IReadOnlyList<LabProcess> KillAll(IEnumerable<LabProcess?> processes)
    {
        var killed = new List<LabProcess>();
        foreach (var p in processes.OfType<LabProcess>().Distinct())
        {
            if (IsAlive(p) && Libc.Kill(p.Pid, Libc.SigKill) == 0)
            {
                killed.Add(p);
            }
        }
        return killed;
    }

    /// <summary>Whether the process is pid 1 of a pid namespace below ours (a node's holder): the last pid of its NSpid line is 1.</summary>
    public static bool IsNamespaceInit(int pid)
    {
        try
        {
            var nspid = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
            var pids = nspid?.Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries) ?? [];
            return pids.Length > 2 && pids[^1] == "1";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Whether the process is gone from /proc: ended and reaped by its parent (no zombie left).</summary>
    public static bool IsReaped(LabProcess process) => Stat(process.Pid)?.StartTime != process.StartTime;

    /// <summary>State and start time (fields 3 and 22) of /proc/PID/stat, or null if there is no such process.</summary>
    private static (char State, long StartTime)? Stat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // pid (comm) state ppid ... : comm may hold spaces and parentheses, so split after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return fields.Length < 20 ? null : (fields[0][0], long.Parse(fields[19], CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Waits until none of <paramref name="processes"/> runs; returns those still running at the deadline. Then
    /// waits a little for their parents to reap them (each holder's is its us-lab keeper): a zombie holds no
    /// namespace but its pid namespace's number.
    /// </summary>
    public static async Task<IReadOnlyList<LabProcess>> WaitGoneAsync(IReadOnlyList<LabProcess> processes, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = processes.Where(IsAlive).ToList();
            if (left.Count > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, ct);
                continue;
            }

            var reapDeadline = DateTime.UtcNow + ReapGrace;
            while (left.Count == 0 && !processes.All(IsReaped) && DateTime.UtcNow < reapDeadline)
            {
                await Task.Delay(20, ct);
            }

            return left;
        }
    }

    private static readonly TimeSpan ReapGrace = TimeSpan.FromSeconds(5);
}
