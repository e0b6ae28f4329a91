using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.Images;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// Runs first at startup: makes sure the state directory exists (0700) and discards the staging
/// directories a crash left behind: a checkpoint that was not committed never existed.
/// </summary>
internal sealed class StateDirectoryInitializer : IHostedService
{
    private const UnixFileMode GroupOrOtherAccess =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly StatePaths _paths;
    private readonly CheckpointStore _store;
    private readonly ILogger<StateDirectoryInitializer> _logger;

    public StateDirectoryInitializer(StatePaths paths, CheckpointStore store, ILogger<StateDirectoryInitializer> logger)
    {
        _paths = paths;
        _store = store;
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
        Directory.CreateDirectory(_paths.GroupsDir, UnixSocketFile.PrivateDirectory);

        foreach (var dir in Directory.EnumerateDirectories(_paths.GroupsDir))
        {
            var group = Path.GetFileName(dir);
            if (GroupName.Problem(group) is not null)
            {
                continue;
            }
            try
            {
                _store.DiscardAllStaging(group);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("Could not discard the staging checkpoints of group {Group}: {Error}", group, e.Message);
            }
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
