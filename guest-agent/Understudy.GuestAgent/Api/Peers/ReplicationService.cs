using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
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
/// a standby receives a primary's checkpoints (<see cref="ReplicaReceiver"/>), and a node's
/// committed checkpoints can be read.
/// </summary>
internal sealed class ReplicationService : Replication.ReplicationBase
{
    private readonly ReplicaReceiver _receiver;
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly ReplicationFaults _faults;
    private readonly ILogger<ReplicationService> _logger;

    public ReplicationService(ReplicaReceiver receiver, CheckpointStore store, CheckpointKeeper keeper, ReplicationFaults faults, ILogger<ReplicationService> logger)
    {
        _receiver = receiver;
        _store = store;
        _keeper = keeper;
        _faults = faults;
        _logger = logger;
    }

    public override Task<HoldingsReply> Holdings(HoldingsRequest request, ServerCallContext context)
    {
        var holdings = _receiver.Holdings(request.Group);
        var reply = new HoldingsReply();
        reply.Committed.AddRange(holdings.Committed);
        foreach (var (id, files) in holdings.Receiving)
        {
            var partial = new PartialCheckpoint { Id = id };
            partial.Files.AddRange(files.Select(f => new FileLength { Name = f.Key, Length = f.Value }));
            reply.Receiving.Add(partial);
        }
        return Task.FromResult(reply);
    }

    public override async Task<PushReply> Push(IAsyncStreamReader<PushMessage> requestStream, ServerCallContext context)
    {
        var cancellationToken = context.CancellationToken;
        if (!await requestStream.MoveNext(cancellationToken).ConfigureAwait(false) || requestStream.Current.BodyCase != PushMessage.BodyOneofCase.Start)
        {
            throw AgentException.InvalidArgument("a push begins with PushStart, naming the group and the checkpoint");
        }
        var start = requestStream.Current.Start;
        using var incoming = await _receiver.BeginAsync(start.Group, start.Id, PeerIdentity.NodeOf(context), PeerIdentity.Describe(context), cancellationToken).ConfigureAwait(false);
        // Chunks are checked and written on a task of their own while the next ones arrive.
        var writeBehind = new ReplicaWriteBehind(incoming, _ => CutIfInjected(incoming, context));
        await using (writeBehind.ConfigureAwait(false))
        {
            while (await requestStream.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                var message = requestStream.Current;
                switch (message.BodyCase)
                {
                    case PushMessage.BodyOneofCase.Chunk:
                        var chunk = message.Chunk;
                        await writeBehind.AddAsync(new ReplicaChunk(chunk.File, chunk.Offset, chunk.Data.Memory, chunk.Crc32C), cancellationToken)
                            .ConfigureAwait(false);
                        break;
                    case PushMessage.BodyOneofCase.Commit:
                        await writeBehind.CompleteAsync().ConfigureAwait(false);
                        var committed = incoming.Commit(message.Commit.ManifestJson, message.Commit.Retention);
                        return new PushReply { Id = incoming.Id, BytesReceived = incoming.BytesReceived, AlreadyHeld = committed is null };
                    default:
                        throw AgentException.InvalidArgument("a push holds one PushStart, then chunks, then PushCommit");
                }
            }
        }
        throw AgentException.Aborted($"the push of checkpoint {incoming.Group}/{incoming.Id} ended before its commit; what arrived is kept");
    }

    private void CutIfInjected(IncomingReplica incoming, ServerCallContext context)
    {
        if (_faults.DropNow())
        {
            _logger.LogWarning("Fault injection: cutting the connection of the push of checkpoint {CheckpointId} of group {Group}", incoming.Id, incoming.Group);
            context.GetHttpContext().Abort();
            throw new OperationCanceledException("connection cut by fault injection");
        }
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
