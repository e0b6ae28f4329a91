using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.GuestAgent.Supervision.Supervisors;
using Understudy.Images;
using ProtoPolicyChange = Understudy.GuestAgent.Contracts.PolicyChange;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// The policy API (agent_services.proto, service Availability): group policies (apply, delete), the
/// supervised start, stop and restart of a group, its policy and state (show), and the event
/// stream. The work is done by the policy applier, the groups' supervisors and the event bus.
/// </summary>
internal sealed class PolicyService : Availability.AvailabilityBase
{
    private readonly PolicyApplier _applier;
    private readonly SupervisorRegistry _supervisors;
    private readonly EventBus _events;
    private readonly GroupRegistry _groups;
    private readonly CheckpointStore _store;
    private readonly StatePaths _paths;

    public PolicyService(
        PolicyApplier applier, SupervisorRegistry supervisors, EventBus events, GroupRegistry groups,
        CheckpointStore store, StatePaths paths)
    {
        _applier = applier;
        _supervisors = supervisors;
        _events = events;
        _groups = groups;
        _store = store;
        _paths = paths;
    }

    public override async Task<ApplyPolicyReply> ApplyPolicy(ApplyPolicyRequest request, ServerCallContext context)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(request.Yaml) is var size && size > ContractLimits.MaxPolicyBytes)
        {
            throw AgentException.InvalidArgument(
                $"policy {request.Source} is {size} bytes, more than a policy may be ({ContractLimits.MaxPolicyBytes / 1024} KiB); check that it is the policy file");
        }
        var outcome = await _applier.ApplyAsync(request.Yaml, request.Source, context.CancellationToken).ConfigureAwait(false);
        var reply = new ApplyPolicyReply
        {
            Group = outcome.Group,
            Created = outcome.Created,
            Availability = Require(outcome.Group).Snapshot().ToAvailability(),
        };
        reply.Changes.AddRange(outcome.Changes.Select(c => new ProtoPolicyChange { Text = c.Text, Live = c.Live }));
        return reply;
    }

    public override async Task<GroupReply> StartGroup(GroupRequest request, ServerCallContext context)
    {
        var supervisor = Require(request.Group);
        await supervisor.StartAsync("started by the operator", context.CancellationToken).ConfigureAwait(false);
        return Reply(supervisor, killed: 0);
    }

    public override async Task<GroupReply> StopGroup(GroupRequest request, ServerCallContext context)
    {
        var supervisor = Require(request.Group);
        var killed = await supervisor.StopAsync("stopped by the operator", context.CancellationToken).ConfigureAwait(false);
        return Reply(supervisor, killed);
    }

    public override async Task<GroupReply> RestartGroup(GroupRequest request, ServerCallContext context)
    {
        var supervisor = Require(request.Group);
        await supervisor.RestartAsync(context.CancellationToken).ConfigureAwait(false);
        return Reply(supervisor, killed: 0);
    }

    public override Task<ShowGroupReply> ShowGroup(GroupRequest request, ServerCallContext context)
    {
        var supervisor = Require(request.Group);
        var snapshot = supervisor.Snapshot();
        var imagesDir = GroupImageDirectory.CurrentTarget(_paths, supervisor.Group)
            ?? snapshot.Applied.Policy.ImagesPath ?? _paths.GroupDir(supervisor.Group);
        var reply = snapshot.ToShowReply(imagesDir, _store.NewestId(supervisor.Group));
        var members = _groups.Find(supervisor.Group)?.Members;
        foreach (var app in reply.Apps.Where(a => a.Pid != 0))
        {
            app.HostPid = members?.Find(app.Pid)?.HostPid ?? 0;
        }
        return Task.FromResult(reply);
    }

    public override async Task<DeleteGroupReply> DeleteGroup(GroupRequest request, ServerCallContext context)
    {
        await _applier.DeleteAsync(request.Group, context.CancellationToken).ConfigureAwait(false);
        return new DeleteGroupReply
        {
            Group = request.Group,
            ImagesDir = GroupImageDirectory.CurrentTarget(_paths, request.Group) ?? _paths.GroupDir(request.Group),
        };
    }

    public override async Task Events(EventsRequest request, IServerStreamWriter<Event> responseStream, ServerCallContext context)
    {
        var group = string.IsNullOrEmpty(request.Group) ? null : GroupNames.Require(request.Group);
        if (request.Last < 0)
        {
            throw AgentException.InvalidArgument($"cannot show the last {request.Last} events: give a positive number");
        }
        // Subscribed before the history is read, so that no event falls between the two.
        using var live = request.Follow ? _events.Subscribe() : null;
        var history = _events.History(group, live?.StartSeq ?? long.MaxValue);
        if (request.Last > 0)
        {
            history = history.TakeLast(request.Last);
        }
        foreach (var record in history)
        {
            await responseStream.WriteAsync(record.ToProto(), context.CancellationToken).ConfigureAwait(false);
        }
        if (live is null)
        {
            return;
        }
        try
        {
            await foreach (var published in live.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (group is null || published.Event.Group == group)
                {
                    await responseStream.WriteAsync(published.ToRecord().ToProto(), context.CancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The follower went away: a normal end of --follow.
        }
    }

    private GroupSupervisor Require(string group)
    {
        GroupNames.Require(group);
        return _supervisors.Find(group)
            ?? throw AgentException.NotFound($"group {group} has no policy; give it one with: hactl group apply -f POLICY.yaml");
    }

    private static GroupReply Reply(GroupSupervisor supervisor, int killed) => new()
    {
        Group = supervisor.Group,
        Availability = supervisor.Snapshot().ToAvailability(),
        Killed = killed,
    };
}
