using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// Sends a pinned checkpoint to another node's agent, with the checkpoints of its chain that node
/// lacks (down to a full or merged one), each resumed from what the node holds of it already.
/// The standby stream and a migration both send through here.
/// </summary>
internal sealed class CheckpointSender
{
    private readonly CheckpointStore _store;
    private readonly IStandbyLinks _links;
    private readonly IRetentionPolicy _retention;
    private readonly AgentOptions _options;
    private readonly ILogger<CheckpointSender> _logger;
    // One send of a group to a node at a time: the standby stream and a migration would otherwise
    // both send the same checkpoint; the second one finds it held and sends nothing.
    private readonly ConcurrentDictionary<(string Node, string Group), SemaphoreSlim> _sending = new();
    // Who counts the bytes of a group sent to a node, whichever caller sends them: the migration of
    // the group to that node (one at a time: it holds the group's lifecycle lock).
    private readonly ConcurrentDictionary<(string Node, string Group), Action<long>> _watchers = new();

    public CheckpointSender(
        CheckpointStore store, IStandbyLinks links, IRetentionPolicy retention, IOptions<AgentOptions> options, ILogger<CheckpointSender> logger)
    {
        _store = store;
        _links = links;
        _retention = retention;
        _options = options.Value;
        _logger = logger;
    }

    /// <summary>
    /// Reports every byte of <paramref name="group"/>'s checkpoints sent to <paramref name="node"/> to
    /// <paramref name="sent"/> until disposed, whoever sends them: while a group migrates to its standby,
    /// the standby stream may send a round before the migration does, which then finds it held.
    /// </summary>
    public IDisposable Watch(string node, string group, Action<long> sent)
    {
        _watchers[(node, group)] = sent;
        return new Unwatch(this, (node, group), sent);
    }

    /// <summary>Returns once <paramref name="node"/> committed the checkpoint; <paramref name="sent"/> counts the bytes as they go.</summary>
    /// <exception cref="StandbyLinkException">The node is unreachable, the link broke, or the node refused.</exception>
    public async Task SendAsync(string node, CheckpointPin pin, Action<long> sent, CancellationToken cancellationToken)
    {
        var one = _sending.GetOrAdd((node, pin.Group), _ => new SemaphoreSlim(1, 1));
        await one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SendChainAsync(node, pin, sent, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            one.Release();
        }
    }

    /// <summary>
    /// Sends a checkpoint while its members write it: its files as they grow, the manifest once it is
    /// committed here; returns once <paramref name="node"/> committed it too. Only when the node holds
    /// what it applies to: otherwise (and after any failure) the checkpoint goes once committed, by
    /// <see cref="SendAsync"/>, which goes on from what arrived.
    /// </summary>
    /// <returns>whether it was sent (or the node held it already); false: the node lacks its base, or the file system cannot tell its origin</returns>
    /// <exception cref="StandbyLinkException">The node is unreachable, the link broke, or the node refused.</exception>
    /// <exception cref="OperationCanceledException">The checkpoint was aborted, or the caller cancelled.</exception>
    public async Task<bool> SendWhileWrittenAsync(string node, GrowingImageFiles files, Action<long> sent, CancellationToken cancellationToken)
    {
        var (group, id, baseSeq) = (files.Checkpoint.Group, files.Id, files.Checkpoint.BaseSeq);
        var one = _sending.GetOrAdd((node, group), _ => new SemaphoreSlim(1, 1));
        await one.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await files.WaitForDataAsync(cancellationToken).ConfigureAwait(false);
            var link = _links.To(node);
            var holdings = await link.HoldingsAsync(group, cancellationToken).ConfigureAwait(false);
            if (holdings.Committed.Contains(id, StringComparer.Ordinal))
            {
                return true;
            }
            // Without an origin, what arrived of it could not be told from an aborted checkpoint's under the same id.
            if (files.Origin.Length == 0 || (baseSeq > 0 && !holdings.Committed.Contains(CheckpointId.Format(baseSeq), StringComparer.Ordinal)))
            {
                return false;
            }
            var held = holdings.Receiving.GetValueOrDefault(id)?.HeldOf(files.Origin) ?? new Dictionary<string, long>();
            // An aborted checkpoint ends the push at once: the node keeps what arrived until a newer one supersedes it.
            using var aborted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            AbortWhenAbandoned(files.Finished, aborted);
            var chunks = ReplicaFiles.FollowAsync(files, held, _options.ReplicationChunkBytes, n => Sent(node, group, n, sent), aborted.Token);
            await link.PushAsync(group, id, files.Origin, chunks, () => files.Finished.Result!.ToJson(), _retention.RetentionOf(group) ?? 0, aborted.Token)
                .ConfigureAwait(false);
            _logger.LogInformation("Checkpoint {CheckpointId} of group {Group} sent to node {Node} while it was written", id, group, node);
            return true;
        }
        finally
        {
            one.Release();
        }
    }

    private async Task SendChainAsync(string node, CheckpointPin pin, Action<long> sent, CancellationToken cancellationToken)
    {
        var link = _links.To(node);
        var holdings = await link.HoldingsAsync(pin.Group, cancellationToken).ConfigureAwait(false);
        var committed = holdings.Committed.ToHashSet(StringComparer.Ordinal);
        // Only what the node lacks below the checkpoint: not an old base of one it holds (merged
        // there, it may have let that base go), which it would refuse without the base's own.
        var lacking = CheckpointChains.Lacking(_store, pin.Group, CheckpointId.Parse(pin.Id), held: seq => committed.Contains(CheckpointId.Format(seq)));
        foreach (var id in lacking.Order().Select(CheckpointId.Format))
        {
            var dir = _store.CheckpointDir(pin.Group, id);
            var manifestJson = await File.ReadAllTextAsync(Path.Combine(dir, CheckpointManifest.FileName), cancellationToken).ConfigureAwait(false);
            var manifest = CheckpointManifest.FromJson(manifestJson);
            var origin = ReplicaOrigin.Of(dir, manifest) ?? "";
            var held = holdings.Receiving.GetValueOrDefault(id)?.HeldOf(origin) ?? new Dictionary<string, long>();
            if (held.Count > 0)
            {
                _logger.LogInformation(
                    "Checkpoint {CheckpointId} of group {Group}: node {Node} holds {Bytes} bytes of it already; going on from there",
                    id, pin.Group, node, held.Values.Sum());
            }
            var chunks = ReplicaFiles.ReadAsync(dir, manifest, held, _options.ReplicationChunkBytes, n => Sent(node, pin.Group, n, sent), cancellationToken);
            await link.PushAsync(pin.Group, id, origin, chunks, () => manifestJson, _retention.RetentionOf(pin.Group) ?? 0, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Checkpoint {CheckpointId} of group {Group} sent to node {Node}", id, pin.Group, node);
        }
    }

    // The checkpoint ends, committed or aborted, whatever happens to the push: the continuation does not linger.
    private static void AbortWhenAbandoned(Task<CheckpointManifest?> finished, CancellationTokenSource aborted) =>
        _ = finished.ContinueWith(
            t =>
            {
                try
                {
                    if (t.Result is null)
                    {
                        aborted.Cancel();
                    }
                }
                catch (ObjectDisposedException)
                {
                    // The push was over first.
                }
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private void Sent(string node, string group, long bytes, Action<long> sent)
    {
        sent(bytes);
        if (_watchers.TryGetValue((node, group), out var watchers))
        {
            watchers(bytes);
        }
    }

    private sealed class Unwatch(CheckpointSender sender, (string Node, string Group) key, Action<long> sent) : IDisposable
    {
        public void Dispose() => sender._watchers.TryRemove(new KeyValuePair<(string, string), Action<long>>(key, sent));
    }
}
