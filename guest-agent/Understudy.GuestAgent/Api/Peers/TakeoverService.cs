using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.GuestAgent.Operations.Migration;
using Understudy.GuestAgent.Operations.Replication;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>
/// The target's side of a migration (peer_services.proto, service Migration), served on the peer
/// endpoint to nodes of the cluster alone: runs a group another node sent here
/// (<see cref="GroupTakeover"/>). The call's cancellation stops it: a source gone before the group
/// was resumed here cancels it, and the restore kills what it rebuilt; a source that gave up
/// abandons the migration too, which fences it here for good.
/// </summary>
internal sealed class TakeoverService(GroupTakeover takeover, ReplicationFaults faults, ILogger<TakeoverService> logger) : Migration.MigrationBase
{
    public override async Task<PrepareReply> Prepare(PrepareRequest request, ServerCallContext context) =>
        new()
        {
            Merged = await takeover.PrepareAsync(request.Group, request.Id, request.Policy, PeerIdentity.NodeOf(context), context.CancellationToken)
                .ConfigureAwait(false),
        };

    public override async Task<TakeOverReply> TakeOver(TakeOverRequest request, ServerCallContext context)
    {
        var result = await takeover.TakeOverAsync(request.Group, request.Id, request.Policy, PeerIdentity.NodeOf(context), context.CancellationToken)
            .ConfigureAwait(false);
        if (faults.DropTakeOverReplyNow())
        {
            logger.LogWarning("Fault injection: cutting the connection of the takeover of group {Group} before its answer", request.Group);
            context.GetHttpContext().Abort();
            throw new OperationCanceledException("connection cut by fault injection");
        }
        return new TakeOverReply { Members = result.Members, DurationMs = result.DurationMs, Standby = result.Standby ?? "" };
    }

    public override async Task<AbandonReply> Abandon(AbandonRequest request, ServerCallContext context) =>
        new() { Running = await takeover.AbandonAsync(request.Group, request.Id, PeerIdentity.NodeOf(context), context.CancellationToken).ConfigureAwait(false) };
}

/// <summary>Who calls on the peer endpoint: the node named by its client certificate, which the cluster's CA signed.</summary>
internal static class PeerIdentity
{
    public static string NodeOf(ServerCallContext context) =>
        NameOf(context) ?? throw new RpcException(new Status(StatusCode.PermissionDenied, "peer calls need the caller's cluster certificate"));

    /// <summary>"node-a (10.0.0.1:41234)", for logs.</summary>
    public static string Describe(ServerCallContext context)
    {
        var connection = context.GetHttpContext().Connection;
        return $"{NameOf(context) ?? "?"} ({connection.RemoteIpAddress}:{connection.RemotePort})";
    }

    private static string? NameOf(ServerCallContext context) =>
        context.GetHttpContext().Connection.ClientCertificate?.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false);
}
