using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>Makes a group's supervisor with the agent's shared services.</summary>
internal sealed class GroupSupervisorFactory(
    LaunchOrderStarter launcher, RecoveryRunner recovery, GroupLauncher availability, GroupRegistry groups,
    ProbeRunner probes, GroupCheckpointer checkpointer, IEventPublisher events, TimeProvider time,
    ILogger<GroupSupervisor> logger)
{
    public GroupSupervisor Create(AppliedPolicy applied)
    {
        // Status and stop know the group from now on, even before it ever ran.
        groups.GetOrCreate(applied.Policy.Group);
        var monitoring = new GroupMonitoring(probes, checkpointer, time, logger);
        return new GroupSupervisor(applied, launcher, recovery, availability, groups, monitoring, events, time, logger);
    }
}
