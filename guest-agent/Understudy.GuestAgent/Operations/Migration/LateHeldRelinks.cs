using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.MemberSocket;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Lifecycle;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// A process held frozen by a migration (docs/protocol.md, HOLD) that registers again only after
/// its migration was settled here, the group running on here: the settler resumed the processes
/// that had registered and waited no longer for this one (a process stopped by a debugger, or
/// starved, across an agent restart). It gets RESUME too, so that no process of a group that runs
/// here stays frozen for good. A held process whose group still has a migration on record
/// (<see cref="MigrationJournal"/>) is left to the settler: the target may run the group.
/// </summary>
internal sealed class LateHeldRelinks(
    EventBus bus, GroupRegistry groups, GroupLifecycles lifecycles, MigrationJournal journal, CheckpointCoordinator coordinator,
    ILogger<LateHeldRelinks> logger) : IHostedService
{
    private EventSubscription? _subscription;
    private Task _watching = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = bus.Subscribe();
        _watching = Task.Run(() => WatchAsync(_subscription), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        await _watching.ConfigureAwait(false);
    }

    private async Task WatchAsync(EventSubscription subscription)
    {
        await foreach (var published in subscription.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (published.Event is MemberJoined joined && HeldWithoutMigration(joined) is not null)
            {
                await ResumeAsync(joined).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The member that joined, if it is held frozen and its group has no migration on record.</summary>
    private Member? HeldWithoutMigration(MemberJoined joined) =>
        groups.Find(joined.Group)?.Members.Find(joined.Vpid) is { Held: true, State: MemberState.Frozen } member
        && member.HostPid == joined.HostPid && !journal.Holds(joined.Group)
            ? member
            : null;

    private async Task ResumeAsync(MemberJoined joined)
    {
        try
        {
            // Under the group's lifecycle lock: the settler resumes the group under it too, and a stop
            // or restore may have ended the process meanwhile.
            await lifecycles.For(joined.Group).RunExclusiveAsync(async _ =>
            {
                if (HeldWithoutMigration(joined) is { } member)
                {
                    await coordinator.ResumeHeldAsync([member], CancellationToken.None).ConfigureAwait(false);
                    logger.LogWarning(
                        "Member {Vpid} ({App}) of group {Group} registered again held frozen after the group's migration was settled here: resumed, as the rest of the group",
                        member.Vpid, member.App, joined.Group);
                }
            }, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException or MemberPhaseException)
        {
            logger.LogError("Member {Vpid} of group {Group} registered again held frozen, and resuming it failed: {Error}; " +
                "'hactl restore {Group} --force' brings the group back from its last checkpoint", joined.Vpid, joined.Group, e.Message, joined.Group);
        }
    }
}
