using Microsoft.Extensions.Hosting;
using Understudy.GuestAgent.Operations.Launch;

namespace Understudy.GuestAgent.Hosting;

/// <summary>On shutdown, stops every group so that no process is left behind.</summary>
internal sealed class GroupShutdownService : IHostedService
{
    private readonly GroupLauncher _availability;

    public GroupShutdownService(GroupLauncher availability)
    {
        _availability = availability;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => _availability.StopAllAsync();
}
