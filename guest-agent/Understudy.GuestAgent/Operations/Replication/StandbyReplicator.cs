using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The primary's side of streaming: every checkpoint committed for a group that has a standby is
/// pinned at its commit and sent to the standby's agent, with the checkpoints of its chain the
/// standby lacks (a standby that missed some catches up from the newest one's chain, down to a
/// full or merged checkpoint). One <see cref="ReplicationStream"/> per group, on its own task:
/// a checkpoint never waits for it; a slow or unreachable standby only makes it fall behind.
/// A checkpoint is offered to its stream already while it is written, to go as it grows.
/// When a group's standby changes, its stream starts over from what it knows the new standby holds:
/// after a migration here, the node it came from holds every checkpoint it sent.
/// </summary>
internal sealed class StandbyReplicator : IHostedService
{
    private readonly CheckpointKeeper _keeper;
    private readonly CheckpointStore _store;
    private readonly StandbyAssignments _assignments;
    private readonly CheckpointSender _sender;
    private readonly ReplicaReceiver _received;
    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<StandbyReplicator> _logger;
    private readonly ConcurrentDictionary<string, ReplicationStream> _streams = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    public StandbyReplicator(
        CheckpointKeeper keeper, CheckpointStore store, StandbyAssignments assignments, CheckpointSender sender, ReplicaReceiver received,
        IOptions<AgentOptions> options, TimeProvider time, ILogger<StandbyReplicator> logger)
    {
        _received = received;
        _keeper = keeper;
        _store = store;
        _assignments = assignments;
        _sender = sender;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _keeper.Committed += OnCommitted;
        _keeper.Writing += OnWriting;
        _assignments.Changed += OnAssigned;
        foreach (var group in _assignments.AssignedGroups())
        {
            OnAssigned(group);
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _keeper.Committed -= OnCommitted;
        _keeper.Writing -= OnWriting;
        _assignments.Changed -= OnAssigned;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_streams.Values.Select(s => s.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The group's replication, or null when it has no standby.</summary>
    public ReplicationState? StateOf(string group)
    {
        if (_assignments.StandbyOf(group) is null || !_streams.TryGetValue(group, out var stream))
        {
            return null;
        }
        return stream.State(_store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind).ToList());
    }

    private void OnAssigned(string group)
    {
        var standby = _assignments.StandbyOf(group);
        if (standby is null)
        {
            if (_streams.TryGetValue(group, out var stream))
            {
                stream.NoStandby();
            }
            return;
        }
        // What the stream knew was about the node before; what the new one holds for certain is
        // what it sent here itself (a migration's rounds, when it moved the group here).
        Stream(group).NewStandby(_received.NewestReceivedFrom(group, standby));
    }

    // Inside the store owner's commit, with the group's merges still held: pinned before a merge
    // or retention can touch it.
    private void OnCommitted(CheckpointInfo committed)
    {
        if (_assignments.StandbyOf(committed.Group) is null)
        {
            return;
        }
        try
        {
            Stream(committed.Group).Offer(_keeper.Pin(committed.Group, committed.Id));
        }
        catch (Exception e) when (e is CheckpointNotFoundException or ImageFormatException or IOException)
        {
            _logger.LogWarning("Checkpoint {CheckpointId} of group {Group} could not be pinned for its standby: {Error}", committed.Id, committed.Group, e.Message);
        }
    }

    // Inside the checkpoint, while its files are still in the staging directory: opened now.
    private void OnWriting(WritingCheckpoint writing)
    {
        if (_assignments.StandbyOf(writing.Group) is null)
        {
            return;
        }
        try
        {
            Stream(writing.Group).OfferWriting(new GrowingImageFiles(writing));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Checkpoint {CheckpointId} of group {Group} could not be opened to go to its standby while written: {Error}", writing.Id, writing.Group, e.Message);
        }
    }

    private ReplicationStream Stream(string group) => _streams.GetOrAdd(group, g =>
    {
        var stream = new ReplicationStream(g, this);
        stream.Start(_stopping.Token);
        return stream;
    });

    /// <summary>Sends the pinned checkpoint and what the standby lacks of its chain; returns once the standby committed it.</summary>
    internal Task SendAsync(CheckpointPin pin, Action<long> sent, CancellationToken cancellationToken)
    {
        var node = _assignments.StandbyOf(pin.Group) ?? throw new StandbyLinkException($"group {pin.Group} has no standby any more");
        return _sender.SendAsync(node, pin, sent, cancellationToken);
    }

    /// <summary>Sends a checkpoint while it is written (<see cref="CheckpointSender.SendWhileWrittenAsync"/>).</summary>
    internal Task<bool> SendWhileWrittenAsync(GrowingImageFiles files, Action<long> sent, CancellationToken cancellationToken)
    {
        var node = _assignments.StandbyOf(files.Checkpoint.Group) ?? throw new StandbyLinkException($"group {files.Checkpoint.Group} has no standby any more");
        return _sender.SendWhileWrittenAsync(node, files, sent, cancellationToken);
    }

    internal CheckpointPin? PinNewest(string group)
    {
        try
        {
            return _store.NewestId(group) is { } newest ? _keeper.Pin(group, newest) : null;
        }
        catch (Exception e) when (e is CheckpointNotFoundException or ImageFormatException or IOException)
        {
            return null;
        }
    }

    internal TimeSpan RetryDelay => _options.ReplicationRetry;
    internal DateTimeOffset Now => _time.GetUtcNow();
    internal ILogger Logger => _logger;
    internal string? StandbyOf(string group) => _assignments.StandbyOf(group);
}

/// <summary>Where a group's replication stands, for status.</summary>
/// <param name="State">in-sync, behind or unreachable</param>
internal sealed record ReplicationState(
    string Standby, string State, int BehindCheckpoints, long BehindBytes, string? LastReplicated, DateTimeOffset? UnreachableSince, string? Error,
    long BytesSent)
{
    public const string InSync = "in-sync";
    public const string Behind = "behind";
    public const string Unreachable = "unreachable";
}
