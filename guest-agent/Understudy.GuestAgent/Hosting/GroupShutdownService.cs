using Microsoft.Extensions.Hosting;
using Understudy.GuestAgent.Operations.Lifecycle;

namespace Understudy.GuestAgent.Hosting;

/// <summary>On shutdown, stops every group so that no process is left behind.</summary>
internal sealed class GroupShutdownService(GroupLifecycles lifecycles) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => lifecycles.StopAllAsync();
}
