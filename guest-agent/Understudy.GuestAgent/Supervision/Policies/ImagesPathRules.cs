using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// Which directories a policy's images.path may name (docs/policy.md, "Images"). The agent
/// (root) writes images and logs there, so it must be a directory of the agent's own user that
/// nobody else can write to, of this group alone: not a system directory, not in the state
/// directory, and not another group's image directory.
/// </summary>
internal static class ImagesPathRules
{
    /// <summary>Never an image directory themselves.</summary>
    private static readonly HashSet<string> SystemDirectories = new(StringComparer.Ordinal)
    {
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt", "/proc",
        "/root", "/run", "/run/user", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/lib",
        "/var/log", "/var/run", "/var/tmp", "/dev/shm",
    };

    /// <summary>Nothing below them is an image directory either.</summary>
    private static readonly string[] SystemTrees = ["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin", "/sys", "/usr"];

    /// <summary>Null when <paramref name="imagesPath"/> may hold <paramref name="group"/>'s images; else why not, and what to do.</summary>
    public static string? Problem(StatePaths paths, string group, string imagesPath)
    {
        var path = Resolve(imagesPath);
        if (SystemDirectories.Contains(path) || SystemTrees.Any(tree => Within(path, tree)))
        {
            return $"{imagesPath} is a system directory, which cannot hold images: name a directory of the group's own, like /srv/understudy/{group}";
        }
        var state = Resolve(paths.Root);
        if (Within(path, state) || Within(state, path))
        {
            return $"{imagesPath} overlaps the agent's state directory {paths.Root}: name a directory outside it (or leave images.path out to keep the images there)";
        }
        if (OtherGroupIn(paths, group, path) is { } other)
        {
            return $"{imagesPath} overlaps the image directory of group {other}: name a directory of this group's own";
        }
        if (File.Exists(path))
        {
            return $"{imagesPath} is a file, not a directory: name a directory";
        }
        if (Directory.Exists(path))
        {
            return PathTrust.Problem(path, "images.path directory");
        }
        // The agent creates it: whoever can write to its parent could plant it first.
        var parent = Path.GetDirectoryName(path);
        while (parent is not null && !Directory.Exists(parent))
        {
            parent = Path.GetDirectoryName(parent);
        }
        return parent is not null && PathTrust.Problem(parent, "directory") is not null && WritableByOthers(parent)
            ? $"{imagesPath} would be created in {parent}, which other users can write to: create it yourself first (mkdir -m 0700 {imagesPath}), or name a directory elsewhere"
            : null;
    }

    private static bool WritableByOthers(string path) =>
        (File.GetUnixFileMode(path) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0;

    private static string? OtherGroupIn(StatePaths paths, string group, string path)
    {
        if (!Directory.Exists(paths.GroupsDir))
        {
            return null;
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(paths.GroupsDir))
        {
            var other = Path.GetFileName(entry);
            if (other != group && GroupImageDirectory.CurrentTarget(paths, other) is { } target
                && (Within(path, Resolve(target)) || Within(Resolve(target), path)))
            {
                return other;
            }
        }
        return null;
    }

    /// <summary>The absolute path, its last component's links followed.</summary>
    private static string Resolve(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        try
        {
            return new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target
                ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(target.FullName))
                : full;
        }
        catch (IOException)
        {
            return full;
        }
    }

    /// <summary>Whether <paramref name="path"/> is <paramref name="dir"/> or below it.</summary>
    private static bool Within(string path, string dir) =>
        path == dir || dir == "/" || path.StartsWith(dir + "/", StringComparison.Ordinal);
}
