using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Native;

/// <summary>Resolves a command name to an absolute executable path, the way a shell does.</summary>
public static class ProgramResolver
{
    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>
    /// A name with a slash is taken relative to <paramref name="cwd"/>; a bare name is looked up
    /// in <paramref name="searchPath"/> (PATH by default).
    /// </summary>
    public static string Resolve(string command, string cwd, string? searchPath = null)
    {
        if (command.Contains('/'))
        {
            var full = Path.GetFullPath(command, cwd);
            if (Directory.Exists(full))
            {
                throw NotRunnable(command, $"{full} is a directory");
            }

            if (!File.Exists(full))
            {
                throw NotRunnable(command, $"{full} does not exist");
            }

            if (!IsExecutable(full))
            {
                throw NotRunnable(command, $"{full} is not executable", "make it executable (chmod +x) or give another program");
            }

            return full;
        }

        searchPath ??= Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in searchPath.Split(':'))
        {
            var candidate = Path.GetFullPath(Path.Combine(dir.Length == 0 ? cwd : dir, command), cwd);
            if (File.Exists(candidate) && IsExecutable(candidate))
            {
                return candidate;
            }
        }
        throw NotRunnable(command, "no such program in PATH");
    }

    private static bool IsExecutable(string path) => (File.GetUnixFileMode(path) & AnyExecute) != 0;

    private static HactlException NotRunnable(string command, string why, string todo = "give the program's absolute path or fix PATH") =>
        new($"cannot launch '{command}'", why, todo);
}
