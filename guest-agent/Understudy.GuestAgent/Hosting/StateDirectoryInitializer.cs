using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// Runs first at startup: makes sure the state directory and its groups directory exist (0700)
/// and locks it (<see cref="StateDirectoryLock"/>) before anything cleans up there, so that a
/// second agent on the same directory is refused with one line; and refuses to start when the
/// state directory, a directory in it, a group's image directory or a stored policy is owned by
/// another user or writable by others (such a user could plant a policy the agent runs, as
/// root). What a crash left in the checkpoint store is the store owner's to clean up (the
/// background merges start it next).
/// </summary>
internal sealed class StateDirectoryInitializer : IHostedService, IDisposable
{
    private const UnixFileMode GroupOrOtherAccess =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly StatePaths _paths;
    private readonly ILogger<StateDirectoryInitializer> _logger;
    private StateDirectoryLock? _lock;

    public StateDirectoryInitializer(StatePaths paths, ILogger<StateDirectoryInitializer> logger)
    {
        _paths = paths;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Directory.Exists(_paths.Root))
        {
            // An existing directory is the operator's; warn rather than change its mode.
            if ((File.GetUnixFileMode(_paths.Root) & GroupOrOtherAccess) != 0)
            {
                _logger.LogWarning("State directory {StateDir} is accessible to other users; it should be 0700", _paths.Root);
            }
        }
        else
        {
            Directory.CreateDirectory(_paths.Root, UnixSocketFile.PrivateDirectory);
        }
        _lock = StateDirectoryLock.Acquire(_paths.Root, _paths.LockFile);
        Directory.CreateDirectory(_paths.GroupsDir, UnixSocketFile.PrivateDirectory);
        Verify(_paths);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Refuses a state directory, a directory in it, a group's image directory or a stored policy
    /// that another user owns or may write to; missing ones are fine (the agent creates them 0700).
    /// </summary>
    /// <exception cref="AgentException">FailedPrecondition, one line: which path, and how to fix it.</exception>
    public static void Verify(StatePaths paths)
    {
        Refuse(paths.Root, "state directory");
        Refuse(paths.GroupsDir, "directory");
        if (Directory.Exists(paths.GroupsDir))
        {
            foreach (var group in Directory.EnumerateFileSystemEntries(paths.GroupsDir))
            {
                Refuse(group, "group directory");
            }
        }
        Refuse(paths.PoliciesDir, "policy directory");
        if (Directory.Exists(paths.PoliciesDir))
        {
            foreach (var policy in Directory.EnumerateFileSystemEntries(paths.PoliciesDir))
            {
                Refuse(policy, "policy file");
            }
        }
    }

    private static void Refuse(string path, string what)
    {
        if (PathTrust.Problem(path, what) is { } problem)
        {
            throw AgentException.FailedPrecondition($"the agent did not start: {problem}");
        }
    }

    // Held until the agent is gone: its last clean-up (stopping groups) still runs under it.
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _lock?.Dispose();
}
