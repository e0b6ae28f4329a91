using Microsoft.Win32.SafeHandles;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// What a lab leaves on the machine, counted from outside: its processes (a command line that
/// names the lab's directory, or a working directory under it), the namespaces they are in
/// (other than the test's own), and the host's links and mounts.
/// A namespace is named by its inode number, which the kernel gives to a new namespace once the
/// old one is freed: with <c>pin</c>, the footprint holds the lab's mount and pid namespaces open
/// until it is disposed, so that a namespace another test creates meanwhile never takes the
/// number of one of the lab's (group launches create both kinds all the time). Network
/// namespaces are not held: that would keep a crashed node's links.
/// </summary>
public sealed record LabFootprint(
    IReadOnlyList<string> Processes,
    IReadOnlySet<string> Namespaces,
    IReadOnlyList<string> HostLinks,
    IReadOnlyList<string> HostMounts,
    IReadOnlyList<SafeFileHandle> Pins) : IDisposable
{
    private static readonly string[] Kinds = ["net", "mnt", "pid"];
    private static readonly string[] PinnedKinds = ["mnt", "pid"];

    public void Dispose()
    {
        foreach (var pin in Pins)
        {
            pin.Dispose();
        }
    }

    public static async Task<LabFootprint> TakeAsync(string dir, bool pin = false)
    {
        var pins = new List<SafeFileHandle>();
        var own = Kinds.Select(k => NamespaceOf("self", k)).OfType<string>().ToHashSet();
        var processes = new List<string>();
        var namespaces = new HashSet<string>();
        foreach (var pid in Pids())
        {
            if (pid == Environment.ProcessId || !BelongsTo(pid, dir, out var description))
            {
                continue;
            }

            processes.Add(description);
            foreach (var kind in Kinds)
            {
                if (NamespaceOf(pid.ToString(), kind) is { } ns && !own.Contains(ns) && namespaces.Add(ns) && pin && PinnedKinds.Contains(kind))
                {
                    try
                    {
                        pins.Add(File.OpenHandle($"/proc/{pid}/ns/{kind}"));
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // the process just ended
                    }
                }
            }
        }

        var links = (await Hactl.RunRaw("ip", ["-o", "link", "show"], Timeouts.Command)).Ok().Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries)[1].TrimEnd(':'))
            .Order().ToList();
        // Mount point and filesystem type of each of the test's mounts (ids change from run to run). Mounts in
        // other directories of /tmp are other tests' (a tmpfs state directory), which come and go meanwhile on a
        // shared machine: they are not counted.
        var mounts = File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => !f[4].StartsWith("/tmp/", StringComparison.Ordinal) || f[4] == dir || f[4].StartsWith(dir + "/", StringComparison.Ordinal))
            .Select(f => $"{f[4]} {f[Array.IndexOf(f, "-") + 1]} {f[Array.IndexOf(f, "-") + 2]}")
            .Order().ToList();
        return new LabFootprint(processes, namespaces, links, mounts, pins);
    }

    /// <summary>
    /// Which of <paramref name="namespaces"/> any process of the machine is still in. A zombie counts (it keeps
    /// its pid namespace) unless <paramref name="ignoreZombies"/>: after a kill -9 of the lab's us-lab keepers,
    /// reaping the holders they leave is their new parent's business (init, or the test process).
    /// </summary>
    public static IReadOnlyList<string> StillInUse(IReadOnlySet<string> namespaces, bool ignoreZombies = false) =>
        Pids().Where(pid => !ignoreZombies || !IsZombie(pid))
            .SelectMany(pid => Kinds.Select(k => NamespaceOf(pid.ToString(), k)))
            .OfType<string>().Where(namespaces.Contains).Distinct().ToList();

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true; // gone
        }
    }

    /// <summary>Every process's namespaces of the three kinds, as net:[INODE] ...</summary>
    private static string? NamespaceOf(string pid, string kind)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/ns/{kind}").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IEnumerable<int> Pids() =>
        Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(n => int.TryParse(n, out var p) ? p : 0).Where(p => p > 0);

    private static bool BelongsTo(int pid, string dir, out string description)
    {
        description = "";
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
            var cwd = new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget ?? "";
            if (cmdline.Contains(dir, StringComparison.Ordinal) || cwd == dir || cwd.StartsWith(dir + "/", StringComparison.Ordinal))
            {
                description = $"{pid} (cwd {cwd}): {cmdline}";
                return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // gone, or a zombie
        }
        return false;
    }
}
