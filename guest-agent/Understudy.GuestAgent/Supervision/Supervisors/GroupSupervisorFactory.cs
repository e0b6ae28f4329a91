using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Supervision.Health;
using Understudy.GuestAgent.Supervision.LaunchOrder;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Recovery;

using Understudy.GuestAgent.Operations.Migration;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>Makes a group's supervisor with the agent's shared services, and attaches it to the group's lifecycle.</summary>
internal sealed class GroupSupervisorFactory(
    GroupLifecycles lifecycles, LaunchOrderStarter starter, IRecoveryDecider decider, RecoveryPointSelector points, GroupRegistry groups,
    PolicyStore store, ProbeRunner probes, MigrationSettler settler, IEventPublisher events, TimeProvider time, ILogger<GroupSupervisor> logger)
{
    public GroupSupervisor Create(AppliedPolicy applied)
    {
        // Status and stop know the group from now on, even before it ever ran.
        groups.GetOrCreate(applied.Policy.Group);
        var lifecycle = lifecycles.For(applied.Policy.Group);
        var monitoring = new GroupMonitoring(probes, lifecycle, time, logger);
        var supervisor = new GroupSupervisor(applied, lifecycle, starter, decider, points, groups, store, monitoring, settler, events, time, logger);
        lifecycle.Attach(supervisor);
        return supervisor;
    }
}
