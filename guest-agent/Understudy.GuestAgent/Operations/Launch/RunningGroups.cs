using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;

namespace Understudy.GuestAgent.Operations.Launch;

/// <summary>
/// At agent start (once the member socket listens, so that their processes can register again):
/// finds the groups whose us-init outlived the previous agent (a crash, a kill, an upgrade) and
/// takes them up (<see cref="GroupLauncher.AdoptAsync"/>). An agent restart is not a fault: the
/// groups ran on throughout. Says what it found (agent.started, group.adopted).
/// </summary>
internal sealed class RunningGroups : IHostedService
{
    private readonly GroupRegistry _groups;
    private readonly GroupLauncher _launcher;
    private readonly StatePaths _paths;
    private readonly IEventPublisher _events;
    private readonly ILogger<RunningGroups> _logger;

    public RunningGroups(GroupRegistry groups, GroupLauncher launcher, StatePaths paths, IEventPublisher events, ILogger<RunningGroups> logger)
    {
        _groups = groups;
        _launcher = launcher;
        _paths = paths;
        _events = events;
        _logger = logger;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var adopted = new List<string>();
        foreach (var name in GroupNamesOnDisk())
        {
            var group = _groups.GetOrCreate(name);
            if (await _launcher.AdoptAsync(group, cancellationToken).ConfigureAwait(false) is not { } init)
            {
                continue;
            }
            adopted.Add(name);
            var processes = ProcFs.ProcessesInNamespaceOf(init.HostPid).Count;
            _events.Publish(new GroupAdopted(name, init.HostPid, processes, init.ExitsLost));
        }
        _events.Publish(new AgentStarted(Environment.ProcessId, adopted));
        if (adopted.Count > 0)
        {
            _logger.LogInformation("Took up {Count} running group(s): {Groups}", adopted.Count, string.Join(", ", adopted));
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private IEnumerable<string> GroupNamesOnDisk()
    {
        try
        {
            return Directory.EnumerateFileSystemEntries(_paths.GroupsDir)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Where(GroupNames.IsValid)
                .Order(StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Cannot list {Dir}: {Error}; no running group is taken up", _paths.GroupsDir, e.Message);
            return [];
        }
    }
}
