using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Supervision.Supervisors;
using Understudy.Images;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// The agent's gRPC API (agent_services.proto, service Agent). Translates requests and replies; the work
/// is done by each group's lifecycle (launch, checkpoint, stop, restore: the same for every group,
/// supervised or not), the status queries and the image store. Errors are mapped by
/// <see cref="ErrorMappingInterceptor"/>.
/// </summary>
internal sealed class AgentService : Agent.AgentBase
{
    private readonly GroupLifecycles _lifecycles;
    private readonly GroupStatusQuery _status;
    private readonly GroupOverview _overview;
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly StandbyAssignments _standbys;
    private readonly StandbyReplicator _replicator;

    public AgentService(
        GroupLifecycles lifecycles, GroupStatusQuery status, GroupOverview overview, CheckpointStore store, CheckpointKeeper keeper,
        StandbyAssignments standbys, StandbyReplicator replicator)
    {
        _standbys = standbys;
        _replicator = replicator;
        _lifecycles = lifecycles;
        _status = status;
        _overview = overview;
        _store = store;
        _keeper = keeper;
    }

    public override async Task<LaunchReply> Launch(LaunchRequest request, ServerCallContext context)
    {
        var spec = LaunchSpecFactory.Create(request.Group, request.App, request.Argv, request.Cwd, request.Env);
        var standby = string.IsNullOrEmpty(request.Standby) ? null : request.Standby;
        if (standby is not null)
        {
            _standbys.Require(standby);
        }
        var launched = await _lifecycles.For(spec.Group).LaunchAsync(spec, context.CancellationToken).ConfigureAwait(false);
        if (standby is not null)
        {
            _standbys.Assign(spec.Group, standby);
        }
        return new LaunchReply { Group = launched.Group, App = launched.App, Pid = launched.Vpid, HostPid = launched.HostPid };
    }

    public override async Task Checkpoint(
        CheckpointRequest request, IServerStreamWriter<CheckpointProgress> responseStream, ServerCallContext context)
    {
        var outcome = await ProgressStream.RunAsync(
            progress => _lifecycles.For(request.Group).CheckpointAsync(request.Full, GroupCheckpointer.Manual, progress, context.CancellationToken),
            (CheckpointProgressUpdate update) => update.ToProto(), responseStream).ConfigureAwait(false);
        await responseStream.WriteAsync(new CheckpointProgress
        {
            Phase = CheckpointPhases.Done,
            MembersDone = outcome.Members,
            MembersTotal = outcome.Members,
            Result = outcome.ToProto(),
        }).ConfigureAwait(false);
    }

    public override async Task<StopReply> Stop(StopRequest request, ServerCallContext context)
    {
        var killed = await _lifecycles.For(request.Group).StopAsync("stopped with hactl stop", context.CancellationToken).ConfigureAwait(false);
        return new StopReply { Group = request.Group, Killed = killed };
    }

    public override async Task<RestoreReply> Restore(RestoreRequest request, ServerCallContext context)
    {
        var outcome = await _lifecycles.For(request.Group).RestoreAsync(request.CheckpointId, request.Force, context.CancellationToken).ConfigureAwait(false);
        var reply = new RestoreReply { Group = outcome.Group, Id = outcome.Id, DurationMs = outcome.DurationMs };
        // The processes restored, not whatever has registered since: a restored shell forks at once.
        var restored = outcome.Members.Select(m => m.Vpid).ToHashSet();
        reply.Members.AddRange(_status.Query(outcome.Group).SelectMany(g => g.Members).Where(m => restored.Contains(m.Pid)).Select(m => m.ToProto()));
        return reply;
    }

    public override Task<StatusReply> Status(StatusRequest request, ServerCallContext context)
    {
        var reply = new StatusReply();
        reply.Groups.AddRange(_overview.Query(request.Group).Select(entry =>
        {
            var group = entry.Status.ToProto();
            group.Availability = entry.Supervision?.ToAvailability();
            group.Replication = _replicator.StateOf(group.Name)?.ToProto();
            if (group.InitHostPid > 0 && _lifecycles.Find(group.Name)?.HeldFrozenBecause is { } why)
            {
                // Its members say frozen: the group does not run, on purpose (an unsettled migration).
                group.State = "migrating";
                group.FrozenBecause = $"frozen here: {why}";
            }
            return group;
        }));
        return Task.FromResult(reply);
    }

    public override Task<ListImagesReply> ListImages(ListImagesRequest request, ServerCallContext context)
    {
        var group = string.IsNullOrEmpty(request.Group) ? null : GroupNames.Require(request.Group);
        var reply = new ListImagesReply();
        reply.Checkpoints.AddRange(_store.List(group).Select(c => c.ToProto()));
        return Task.FromResult(reply);
    }

    public override Task<VerifyImageReply> VerifyImage(VerifyImageRequest request, ServerCallContext context)
    {
        var (group, id) = RequireCheckpoint(request.Group, request.Id);
        var reply = new VerifyImageReply { Group = group, Id = id, Ok = true };
        try
        {
            // A background merge replaces the images of a committed checkpoint and deletes the
            // ones it replaced: the pin keeps the files this reads as they are until it is done.
            using var pin = _keeper.Pin(group, id);
            _store.VerifyForRestore(group, id);
        }
        catch (ImageFormatException e)
        {
            // A bad image is the answer to this call, not a failure of it.
            reply.Ok = false;
            reply.Error = AgentException.OneLine(e.Message);
        }
        return Task.FromResult(reply);
    }

    public override Task<InspectImageReply> InspectImage(InspectImageRequest request, ServerCallContext context)
    {
        var (group, id) = RequireCheckpoint(request.Group, request.Id);
        using var pin = _keeper.Pin(group, id);
        return Task.FromResult(new InspectImageReply { Json = _store.InspectJson(group, id) });
    }

    private static (string Group, string Id) RequireCheckpoint(string group, string id)
    {
        GroupNames.Require(group);
        if (!CheckpointId.TryParse(id, out _))
        {
            throw AgentException.InvalidArgument($"invalid checkpoint id '{id}': ids are the zero-padded sequence number, e.g. 000003");
        }
        return (group, id);
    }
}
