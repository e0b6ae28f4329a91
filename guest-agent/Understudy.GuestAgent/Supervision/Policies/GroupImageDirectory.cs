using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// Where a group keeps its images. By default that is STATE/groups/GROUP; a policy's
/// images.path makes STATE/groups/GROUP a symbolic link to that directory, so the checkpoint
/// store, us-init and the logs all follow it and a checkpoint's staging and committed
/// directories stay on one file system (the commit is a rename).
/// </summary>
internal static class GroupImageDirectory
{
    /// <summary>The directory the group's images are in now, or null when it has none yet.</summary>
    public static string? CurrentTarget(StatePaths paths, string group)
    {
        var dir = new DirectoryInfo(paths.GroupDir(group));
        if (dir.LinkTarget is { } target)
        {
            return Path.TrimEndingDirectorySeparator(Path.GetFullPath(target, paths.GroupsDir));
        }
        return dir.Exists ? dir.FullName : null;
    }

    /// <summary>
    /// Points the group's directory at <paramref name="imagesPath"/> if it has none yet, and
    /// creates that directory (0700) if it is missing. The caller checked that the group's
    /// images are not elsewhere already (PolicyEnvironment).
    /// </summary>
    public static void Bind(StatePaths paths, string group, string imagesPath)
    {
        if (!Directory.Exists(imagesPath))
        {
            Directory.CreateDirectory(imagesPath, UnixSocketFile.PrivateDirectory);
        }
        if (CurrentTarget(paths, group) is null)
        {
            Directory.CreateDirectory(paths.GroupsDir, UnixSocketFile.PrivateDirectory);
            Directory.CreateSymbolicLink(paths.GroupDir(group), imagesPath);
        }
    }
}
