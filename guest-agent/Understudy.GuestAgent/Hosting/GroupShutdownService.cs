using Microsoft.Extensions.Hosting;
using Understudy.GuestAgent.Launch;

namespace Understudy.GuestAgent.Hosting;

/// <summary>On shutdown, stops every group so that no process is left behind.</summary>
internal sealed class GroupShutdownService : IHostedService
{
    private readonly AvailabilityManager _availability;

    public GroupShutdownService(AvailabilityManager availability)
    {
        _availability = availability;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => _availability.StopAllAsync();
}
