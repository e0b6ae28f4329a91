using System.Globalization;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Replication;
using ProtoCheckpointInfo = Understudy.GuestAgent.Contracts.CheckpointInfo;
using ProtoGroup = Understudy.GuestAgent.Contracts.Group;
using ProtoMember = Understudy.GuestAgent.Contracts.Member;
using ProtoUnprotectedProcess = Understudy.GuestAgent.Contracts.UnprotectedProcess;

namespace Understudy.GuestAgent.Api;

/// <summary>Domain records to the API's messages (agent_messages.proto).</summary>
internal static class ProtoMapping
{
    public static ReplicationStatus ToProto(this ReplicationState state) => new()
    {
        Standby = state.Standby,
        State = state.State,
        BehindCheckpoints = state.BehindCheckpoints,
        BehindBytes = state.BehindBytes,
        LastReplicated = state.LastReplicated ?? "",
        UnreachableSince = state.UnreachableSince?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture) ?? "",
        Error = state.Error ?? "",
        BytesSent = state.BytesSent,
    };

    public static CheckpointProgress ToProto(this CheckpointProgressUpdate update) => new()
    {
        Phase = update.Phase,
        MembersDone = update.MembersDone,
        MembersTotal = update.MembersTotal,
    };

    public static CheckpointResult ToProto(this CheckpointOutcome outcome) => new()
    {
        Group = outcome.Group,
        Id = outcome.Id,
        Kind = outcome.Kind,
        Bytes = outcome.Bytes,
        Members = outcome.Members,
        FrozenMs = outcome.FrozenMs,
        DurationMs = outcome.DurationMs,
        BaseId = outcome.BaseSeq > 0 ? Understudy.Images.CheckpointId.Format(outcome.BaseSeq) : "",
    };

    public static ProtoGroup ToProto(this GroupStatus status)
    {
        var group = new ProtoGroup
        {
            Name = status.Name,
            State = status.State,
            LastCheckpoint = status.LastCheckpoint ?? "",
            InitHostPid = status.InitHostPid,
            Processes = status.Processes,
        };
        group.Members.AddRange(status.Members.Select(ToProto));
        group.Unprotected.AddRange(status.Unprotected.Select(p => new ProtoUnprotectedProcess
        {
            Pid = p.Pid,
            HostPid = p.HostPid,
            Program = p.Program,
        }));
        return group;
    }

    public static ProtoMember ToProto(this MemberStatus member) => new()
    {
        Pid = member.Pid,
        HostPid = member.HostPid,
        App = member.App,
        ExecCount = member.ExecCount,
        Program = member.Program,
        State = member.State,
        Tracker = member.Tracker,
    };

    public static ProtoCheckpointInfo ToProto(this Understudy.Images.CheckpointInfo info) => new()
    {
        Group = info.Group,
        Id = info.Id,
        Kind = info.Kind,
        Bytes = info.Bytes,
        CreatedUtc = info.CreatedUtc.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
        Members = info.Members,
        BaseId = info.BaseSeq > 0 ? Understudy.Images.CheckpointId.Format(info.BaseSeq) : "",
        Merged = info.Merged,
    };
}
