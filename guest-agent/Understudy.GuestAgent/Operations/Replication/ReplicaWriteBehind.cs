using System.Threading.Channels;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// Checks and writes the chunks of one transfer on a task of its own, in the order they came, so
/// that the next chunk is received while one is checked and written. At most <see cref="Capacity"/>
/// chunks wait; the link waits while they do (its flow control is the back-pressure). A chunk that
/// fails (a bad checksum, a gap) stops the writing, and the next <see cref="AddAsync"/> or
/// <see cref="CompleteAsync"/> throws its error.
/// </summary>
internal sealed class ReplicaWriteBehind : IAsyncDisposable
{
    /// <summary>Chunks received but not yet written, at most.</summary>
    public const int Capacity = 4;

    private readonly Channel<ReplicaChunk> _chunks =
        Channel.CreateBounded<ReplicaChunk>(new BoundedChannelOptions(Capacity) { SingleReader = true, SingleWriter = true });
    private readonly Task _writer;

    /// <param name="written">called after each chunk was written</param>
    public ReplicaWriteBehind(IncomingReplica incoming, Action<ReplicaChunk> written)
    {
        _writer = Task.Run(() => WriteAllAsync(incoming, written));
    }

    /// <exception cref="Foundation.Errors.AgentException">An earlier chunk could not be written.</exception>
    public async ValueTask AddAsync(ReplicaChunk chunk, CancellationToken cancellationToken)
    {
        try
        {
            await _chunks.Writer.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            await _writer.ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Returns once every chunk was written.</summary>
    public async Task CompleteAsync()
    {
        _chunks.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    // Not cancelled with the call: what arrived is written even when the link broke (at most
    // Capacity chunks), so that the holdings say all that arrived.
    private async Task WriteAllAsync(IncomingReplica incoming, Action<ReplicaChunk> written)
    {
        try
        {
            await foreach (var chunk in _chunks.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                await incoming.WriteAsync(chunk, CancellationToken.None).ConfigureAwait(false);
                written(chunk);
            }
        }
        catch (Exception e)
        {
            _chunks.Writer.TryComplete(e);
            throw;
        }
    }

    /// <summary>Waits until the chunks received were written, or the writing failed.</summary>
    public async ValueTask DisposeAsync()
    {
        _chunks.Writer.TryComplete();
        // Its failure, if any, was thrown to the caller already or no longer matters.
        await Task.WhenAny(_writer).ConfigureAwait(false);
    }
}
