using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Api.Peers;

/// <summary>
/// The peer service (peer_services.proto, service Replication), served on the peer endpoint only,
/// to nodes whose certificate the cluster's CA signed (the TLS handshake refuses the others):
/// what a standby holds of a group (the checkpoints themselves come on push connections:
/// <see cref="PushConnectionHandler"/>), and a node's committed checkpoints can be read.
/// </summary>
internal sealed class ReplicationService : Replication.ReplicationBase
{
    private readonly ReplicaReceiver _receiver;
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly ILogger<ReplicationService> _logger;

    public ReplicationService(ReplicaReceiver receiver, CheckpointStore store, CheckpointKeeper keeper, ILogger<ReplicationService> logger)
    {
        _receiver = receiver;
        _store = store;
        _keeper = keeper;
        _logger = logger;
    }

    public override Task<HoldingsReply> Holdings(HoldingsRequest request, ServerCallContext context)
    {
        var holdings = _receiver.Holdings(request.Group);
        var reply = new HoldingsReply();
        reply.Committed.AddRange(holdings.Committed);
        foreach (var (id, copy) in holdings.Receiving)
        {
            var partial = new PartialCheckpoint { Id = id, Origin = copy.Origin };
            partial.Files.AddRange(copy.Files.Select(f => new FileLength { Name = f.Key, Length = f.Value }));
            reply.Receiving.Add(partial);
        }
        return Task.FromResult(reply);
    }

    public override async Task Fetch(FetchRequest request, IServerStreamWriter<FetchMessage> responseStream, ServerCallContext context)
    {
        GroupNames.Require(request.Group);
        if (!CheckpointId.TryParse(request.Id, out _))
        {
            throw AgentException.InvalidArgument($"invalid checkpoint id '{request.Id}'");
        }
        using var pin = _keeper.Pin(request.Group, request.Id);
        _logger.LogInformation("Checkpoint {CheckpointId} of group {Group} read by node {Peer}", request.Id, request.Group, PeerIdentity.Describe(context));
        var dir = _store.CheckpointDir(request.Group, request.Id);
        var manifestJson = await File.ReadAllTextAsync(Path.Combine(dir, CheckpointManifest.FileName), context.CancellationToken).ConfigureAwait(false);
        var manifest = CheckpointManifest.FromJson(manifestJson);
        await foreach (var chunk in ReplicaFiles.ReadAsync(dir, manifest, new Dictionary<string, long>(), 1 << 20, _ => { }, context.CancellationToken)
                           .ConfigureAwait(false))
        {
            await responseStream.WriteAsync(new FetchMessage { Chunk = PeerChunks.ToProto(chunk) }).ConfigureAwait(false);
        }
        await responseStream.WriteAsync(new FetchMessage { ManifestJson = manifestJson }).ConfigureAwait(false);
    }
}

internal static class PeerChunks
{
    public static Chunk ToProto(ReplicaChunk chunk) => new()
    {
        File = chunk.File,
        Offset = chunk.Offset,
        Data = UnsafeByteOperations.UnsafeWrap(chunk.Data),
        Crc32C = chunk.Crc32c,
    };
}
