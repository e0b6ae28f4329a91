using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Operations.Lifecycle;

namespace Understudy.GuestAgent.Hosting;

/// <summary>
/// On shutdown, stops every group so that no process is left behind; with
/// <see cref="AgentOptions.KeepGroups"/> it leaves them running instead, for the next agent on
/// the state directory to take up (their us-init outlives this agent).
/// </summary>
internal sealed class GroupShutdownService(GroupLifecycles lifecycles, IOptions<AgentOptions> options, ILogger<GroupShutdownService> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.KeepGroups)
        {
            return lifecycles.StopAllAsync();
        }
        logger.LogInformation("Leaving the groups running (--keep-groups): the next agent on {StateDir} takes them up", options.Value.StateDir);
        return Task.CompletedTask;
    }
}
