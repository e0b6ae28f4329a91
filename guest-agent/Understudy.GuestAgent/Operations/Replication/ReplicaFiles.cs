using System.Runtime.CompilerServices;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The files of a committed checkpoint as chunks for a peer: each member's .meta and .pages, from
/// the length the peer already holds to the end, in chunks of a fixed size with their CRC-32C.
/// One chunk is in memory at a time: the next is read once the link took the last one (its
/// flow control is the back-pressure).
/// </summary>
internal static class ReplicaFiles
{
    /// <summary>The files of the checkpoint, in the order they are sent: by member, .meta then .pages.</summary>
    public static IReadOnlyList<(string Name, long Length)> Of(CheckpointManifest manifest) =>
        manifest.Members.SelectMany(m => (IEnumerable<(string, long)>)[(m.Meta, m.MetaBytes), (m.Pages, m.PagesBytes)]).ToList();

    /// <param name="held">per file, the bytes the peer holds already</param>
    /// <param name="sent">counts the bytes of every chunk handed out</param>
    public static async IAsyncEnumerable<ReplicaChunk> ReadAsync(
        string checkpointDir, CheckpointManifest manifest, IReadOnlyDictionary<string, long> held, int chunkBytes, Action<long> sent,
        [EnumeratorCancellation] CancellationToken cancellationToken)
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
                    var buffer = new byte[(int)Math.Min(chunkBytes, length - offset)];
                    await file.ReadExactlyAsync(buffer, cancellationToken).ConfigureAwait(false);
                    sent(buffer.Length);
                    yield return new ReplicaChunk(name, offset, buffer, Crc32C.Compute(buffer));
                    offset += buffer.Length;
                }
                while (offset < length);
            }
        }
    }
}
