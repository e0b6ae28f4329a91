namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>Where the product and the test workloads are.</summary>
public static class Repo
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    /// <summary>The repository root: the first directory above the test binaries holding Appliance.sln.</summary>
    public static string Root => RootLazy.Value;

    public static string Hactl
    {
        get
        {
            var path = Path.Combine(Root, "out", "bin", "hactl");
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{path} does not exist: run ./build.sh first");
            }

            return path;
        }
    }

    /// <summary>
    /// A test workload (native/tests/workloads, installed into out/tests). Set
    /// UNDERSTUDY_WORKLOADS to a directory to use another build of them.
    /// </summary>
    public static string Workload(string name)
    {
        var dirs = new List<string>();
        var env = Environment.GetEnvironmentVariable("UNDERSTUDY_WORKLOADS");
        if (!string.IsNullOrEmpty(env))
        {
            dirs.Add(env);
        }

        dirs.Add(Path.Combine(Root, "out", "tests"));
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return Path.GetFullPath(candidate);
            }
        }
        var outDir = Path.Combine(Root, "out");
        if (Directory.Exists(outDir))
        {
            var found = Directory.EnumerateFiles(outDir, name, SearchOption.AllDirectories)
                .OrderBy(p => p.Length).FirstOrDefault();
            if (found is not null)
            {
                return found;
            }
        }
        throw new InvalidOperationException(
            $"test workload {name} not found in {string.Join(", ", dirs)} or below {outDir}: run ./build.sh first");
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Appliance.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"no Appliance.sln above {AppContext.BaseDirectory}: cannot find the repository root");
    }
}

/// <summary>
/// Generous limits for a loaded 2-core machine. They bound waits so that a broken
/// product fails instead of hanging; no test asserts how long anything took.
/// UNDERSTUDY_IT_TIMEOUT_SCALE multiplies them.
/// </summary>
public static class Timeouts
{
    private static readonly double Scale =
        double.TryParse(Environment.GetEnvironmentVariable("UNDERSTUDY_IT_TIMEOUT_SCALE"),
            System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture,
            out var s) && s > 0 ? s : 1.0;

    /// <summary>Waiting for a workload or the agent to get somewhere.</summary>
    public static TimeSpan Wait => TimeSpan.FromSeconds(60 * Scale);

    /// <summary>One hactl command (a 256 MiB checkpoint or restore included).</summary>
    public static TimeSpan Command => TimeSpan.FromSeconds(180 * Scale);

    /// <summary>Cleanup steps.</summary>
    public static TimeSpan Cleanup => TimeSpan.FromSeconds(30 * Scale);

    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
}
