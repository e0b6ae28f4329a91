namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The wire to other nodes' agents, as the replicator sees it; the API layer implements it with
/// the peer service's gRPC client (mutual TLS). A failure of the link (the node is down, the
/// connection broke, it refused) is a <see cref="StandbyLinkException"/>.
/// </summary>
internal interface IStandbyLinks
{
    /// <exception cref="StandbyLinkException">The node is not a peer of this agent.</exception>
    IStandbyLink To(string node);
}

internal interface IStandbyLink
{
    /// <summary>What the node holds of the group: committed checkpoints and files being received.</summary>
    Task<StandbyHoldings> HoldingsAsync(string group, CancellationToken cancellationToken);

    /// <summary>
    /// Sends one checkpoint: <paramref name="chunks"/> in order, then the manifest, asked for once the
    /// last chunk is out (a checkpoint sent while it is written has none before); returns once the
    /// node committed its copy.
    /// </summary>
    /// <returns>whether the node had it already</returns>
    /// <param name="origin">what the copy is (<see cref="ReplicaOrigin"/>; "": not known)</param>
    Task<bool> PushAsync(
        string group, string id, string origin, IAsyncEnumerable<ReplicaChunk> chunks, Func<string> manifestJson, int retention, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the node to merge checkpoint <paramref name="id"/>'s chain into full images, ahead of a
    /// takeover, and to check the group's policy (<paramref name="policyText"/>, null: none) there.
    /// </summary>
    Task PrepareAsync(string group, string id, string? policyText, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the node to restore the group from checkpoint <paramref name="id"/>, which it holds, and
    /// returns once the group runs there, supervised by <paramref name="policyText"/> if the group has a
    /// policy (null: none). Should the call end first, the node kills what it restored.
    /// </summary>
    /// <exception cref="PeerRefusedException">The node answered: it could not (the restore failed, the group runs there).</exception>
    Task<TakeOverResult> TakeOverAsync(string group, string id, string? policyText, CancellationToken cancellationToken);

    /// <summary>
    /// Gives up the migration whose takeover restores checkpoint <paramref name="id"/>: the node promises
    /// never to run it (a takeover of it in progress there is stopped, a later one refused), then says
    /// whether the group runs there, once any takeover or restore of it there is over.
    /// </summary>
    Task<bool> AbandonAsync(string group, string id, CancellationToken cancellationToken);
}

/// <summary>A group the node took over: how many processes run there, how long its restore took, and its standby there.</summary>
internal sealed record TakeOverResult(int Members, double DurationMs, string? Standby);

/// <summary>What a node holds of a group: its committed checkpoints, and the checkpoints being received.</summary>
internal sealed record StandbyHoldings(IReadOnlyList<string> Committed, IReadOnlyDictionary<string, PartialCopy> Receiving);

/// <summary>Part of a checkpoint received: the length of each file, and what it is a copy of (<see cref="ReplicaOrigin"/>; "": not known).</summary>
internal sealed record PartialCopy(string Origin, IReadOnlyDictionary<string, long> Files)
{
    /// <summary>The lengths to go on from, for a copy of <paramref name="origin"/>: none when this part is of another.</summary>
    public IReadOnlyDictionary<string, long> HeldOf(string origin) => Origin == origin ? Files : new Dictionary<string, long>();
}

/// <summary>A piece of one file of a checkpoint: <see cref="Data"/> at <see cref="Offset"/>, and its CRC-32C.</summary>
internal sealed record ReplicaChunk(string File, long Offset, ReadOnlyMemory<byte> Data, uint Crc32c);

/// <summary>The link to a standby failed: unreachable, broken, or refused; one line.</summary>
internal class StandbyLinkException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The node was reached and answered no, with its reason: what it was asked was not done.</summary>
internal sealed class PeerRefusedException(string message, Exception? inner = null) : StandbyLinkException(message, inner);
