using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The files of a checkpoint as chunks for a peer, committed or as they are written: each member's .meta and .pages, from
/// the length the peer already holds to the end, in chunks of a fixed size with their CRC-32C.
/// Reading and checksumming run ahead of the link by <see cref="ReadAhead"/> chunks, so that the
/// disk and the CPU work while the link sends; a few buffers are handed round, and a chunk's data
/// is valid until the next chunk is asked for (the link's flow control is the back-pressure).
/// </summary>
internal static class ReplicaFiles
{
    /// <summary>Chunks read ahead of the one the link sends.</summary>
    public const int ReadAhead = 2;

    /// <summary>The files of the checkpoint, in the order they are sent: by member, .meta then .pages.</summary>
    public static IReadOnlyList<(string Name, long Length)> Of(CheckpointManifest manifest) =>
        manifest.Members.SelectMany(m => (IEnumerable<(string, long)>)[(m.Meta, m.MetaBytes), (m.Pages, m.PagesBytes)]).ToList();

    /// <param name="held">per file, the bytes the peer holds already</param>
    /// <param name="sent">counts the bytes of every chunk handed out</param>
    public static IAsyncEnumerable<ReplicaChunk> ReadAsync(
        string checkpointDir, CheckpointManifest manifest, IReadOnlyDictionary<string, long> held, int chunkBytes, Action<long> sent,
        CancellationToken cancellationToken) =>
        PipelineAsync((buffers, chunks, stop) => ReadAllAsync(checkpointDir, manifest, held, buffers, chunks, stop), chunkBytes, sent, cancellationToken);

    /// <summary>
    /// The files of a checkpoint being written, as they grow: whole chunks of each file as soon as
    /// they are on disk (the writers append, so what a file holds up to its length stays as it is),
    /// the rest of a member's files once its writer is done, and, once the checkpoint is committed,
    /// whatever is left of each file up to the manifest's length.
    /// </summary>
    /// <exception cref="OperationCanceledException">The checkpoint was aborted, or <paramref name="cancellationToken"/> cancelled.</exception>
    public static IAsyncEnumerable<ReplicaChunk> FollowAsync(
        GrowingImageFiles files, IReadOnlyDictionary<string, long> held, int chunkBytes, Action<long> sent, CancellationToken cancellationToken) =>
        PipelineAsync((buffers, chunks, stop) => FollowAllAsync(files, held, buffers, chunks, stop), chunkBytes, sent, cancellationToken);

    private static async IAsyncEnumerable<ReplicaChunk> PipelineAsync(
        Func<BufferRing, ChannelWriter<(ReplicaChunk, byte[])>, CancellationToken, Task> produce, int chunkBytes, Action<long> sent,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var read = Channel.CreateBounded<(ReplicaChunk Chunk, byte[] Buffer)>(
            new BoundedChannelOptions(ReadAhead) { SingleReader = true, SingleWriter = true });
        var buffers = new BufferRing(ReadAhead + 2, chunkBytes);
        var reader = Task.Run(() => produce(buffers, read.Writer, stop.Token));
        try
        {
            await foreach (var (chunk, buffer) in read.Reader.ReadAllAsync(stop.Token).ConfigureAwait(false))
            {
                sent(chunk.Data.Length);
                yield return chunk;
                buffers.Return(buffer);
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            // It fails into the channel, never itself.
            await reader.ConfigureAwait(false);
        }
    }

    private static async Task ReadAllAsync(
        string checkpointDir, CheckpointManifest manifest, IReadOnlyDictionary<string, long> held, BufferRing buffers,
        ChannelWriter<(ReplicaChunk, byte[])> chunks, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var (name, length) in Of(manifest))
            {
                var offset = held.TryGetValue(name, out var have) && have <= length ? have : 0;
                if (offset == length && length > 0)
                {
                    continue;
                }
                var file = new FileStream(Path.Combine(checkpointDir, name), FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                await using (file.ConfigureAwait(false))
                {
                    file.Position = offset;
                    do
                    {
                        var buffer = await buffers.RentAsync(cancellationToken).ConfigureAwait(false);
                        var data = buffer.AsMemory(0, (int)Math.Min(buffers.Bytes, length - offset));
                        await file.ReadExactlyAsync(data, cancellationToken).ConfigureAwait(false);
                        await chunks.WriteAsync((new ReplicaChunk(name, offset, data, Crc32C.Compute(data.Span)), buffer), cancellationToken)
                            .ConfigureAwait(false);
                        offset += data.Length;
                    }
                    while (offset < length);
                }
            }
            chunks.Complete();
        }
        catch (Exception e)
        {
            chunks.Complete(e);
        }
    }

    private static async Task FollowAllAsync(
        GrowingImageFiles files, IReadOnlyDictionary<string, long> held, BufferRing buffers, ChannelWriter<(ReplicaChunk, byte[])> chunks,
        CancellationToken cancellationToken)
    {
        try
        {
            var offsets = files.Names.ToDictionary(name => name, name => held.GetValueOrDefault(name), StringComparer.Ordinal);
            // While it is written: whole chunks, and the rest of a member's files once its writer is
            // done with them, which its .meta says: the writer writes it last, after all of .pages.
            while (!files.Finished.IsCompleted)
            {
                var progressed = false;
                foreach (var name in files.Names)
                {
                    var written = files.IsWritten(name);
                    long ready;
                    while ((ready = files.Length(name) - offsets[name]) >= buffers.Bytes || (written && ready > 0))
                    {
                        var bytes = (int)Math.Min(ready, buffers.Bytes);
                        offsets[name] = await SendAsync(files, name, offsets[name], bytes, buffers, chunks, cancellationToken).ConfigureAwait(false);
                        progressed = true;
                    }
                }
                if (!progressed)
                {
                    await Task.WhenAny(files.Finished, Task.Delay(GrowingImageFiles.Poll, cancellationToken)).ConfigureAwait(false);
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }
            var manifest = await files.Finished.ConfigureAwait(false)
                ?? throw new OperationCanceledException($"checkpoint {files.Id} was aborted while it was sent");
            foreach (var (name, length) in Of(manifest))
            {
                var offset = offsets.GetValueOrDefault(name);
                if (files.Length(name) != length || offset > length)
                {
                    throw new IOException($"{name} of checkpoint {files.Id} holds {files.Length(name)} bytes, its manifest says {length}");
                }
                while (offset < length)
                {
                    offset = await SendAsync(files, name, offset, (int)Math.Min(buffers.Bytes, length - offset), buffers, chunks, cancellationToken)
                        .ConfigureAwait(false);
                }
            }
            chunks.Complete();
        }
        catch (Exception e)
        {
            chunks.Complete(e);
        }
    }

    private static async Task<long> SendAsync(
        GrowingImageFiles files, string name, long offset, int bytes, BufferRing buffers, ChannelWriter<(ReplicaChunk, byte[])> chunks,
        CancellationToken cancellationToken)
    {
        var buffer = await buffers.RentAsync(cancellationToken).ConfigureAwait(false);
        var data = buffer.AsMemory(0, bytes);
        await files.ReadExactlyAsync(name, data, offset, cancellationToken).ConfigureAwait(false);
        await chunks.WriteAsync((new ReplicaChunk(name, offset, data, Crc32C.Compute(data.Span)), buffer), cancellationToken).ConfigureAwait(false);
        return offset + bytes;
    }

    /// <summary>At most <c>count</c> buffers of <c>bytes</c> bytes, allocated as needed and handed round.</summary>
    private sealed class BufferRing(int count, int bytes)
    {
        private readonly Channel<byte[]> _free = Channel.CreateUnbounded<byte[]>();
        private int _allocated;

        public int Bytes => bytes;

        public ValueTask<byte[]> RentAsync(CancellationToken cancellationToken) =>
            _free.Reader.TryRead(out var buffer) ? ValueTask.FromResult(buffer)
            : Interlocked.Increment(ref _allocated) <= count ? ValueTask.FromResult(new byte[bytes])
            : _free.Reader.ReadAsync(cancellationToken);

        public void Return(byte[] buffer) => _free.Writer.TryWrite(buffer);
    }
}
