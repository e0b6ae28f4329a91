using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Events;
using Understudy.GuestAgent.Groups;
using Understudy.GuestAgent.Health;
using Understudy.GuestAgent.Launch;
using Understudy.GuestAgent.Policies;
using Understudy.GuestAgent.Recovery;
using Understudy.GuestAgent.Scheduling;

namespace Understudy.GuestAgent.Supervision;

/// <summary>Makes a group's supervisor with the agent's shared services.</summary>
internal sealed class GroupSupervisorFactory(
    GroupLauncher launcher, RecoveryRunner recovery, AvailabilityManager availability, GroupRegistry groups,
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
