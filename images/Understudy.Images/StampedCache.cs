using System.Collections.Concurrent;

namespace Understudy.Images;

/// <summary>
/// What was read from a file (a parsed manifest, a pages file found good), kept with the file's
/// stamp (<see cref="Libc.Stamp"/>: device, inode, size, change time) as it was before the read,
/// and reused while the file has that stamp. A file changed less than
/// <see cref="CheckpointStore.ReusableAfter"/> before it was stamped is not kept: a change within
/// the same tick of the kernel's clock could keep its change time. Past its limit the cache starts
/// over, so that entries of deleted files do not pile up.
/// </summary>
internal sealed class StampedCache<TKey, TValue>(int limit) where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, (FileStamp Stamp, TValue Value)> _entries = new();

    /// <summary>The value kept for <paramref name="key"/> if <paramref name="path"/> is unchanged since, else <paramref name="read"/>'s.</summary>
    /// <param name="reuse">false: read in any case (the result is kept all the same)</param>
    public TValue GetOrRead(TKey key, string path, Func<TValue> read, bool reuse = true)
    {
        var stamp = Libc.Stamp(path);
        var stampedAt = DateTimeOffset.UtcNow;
        if (reuse && stamp is { } now && _entries.TryGetValue(key, out var known) && known.Stamp == now)
        {
            return known.Value;
        }
        var value = read();
        if (stamp is { } before && stampedAt - before.Changed >= CheckpointStore.ReusableAfter)
        {
            if (_entries.Count >= limit)
            {
                _entries.Clear();
            }
            _entries[key] = (before, value);
        }
        return value;
    }

    /// <summary>
    /// Keeps <paramref name="value"/> for <paramref name="key"/> with <paramref name="path"/>'s stamp
    /// now, however recent its change time: for what the caller knows of the file without reading
    /// it (its own writer made it), not for what a read found.
    /// </summary>
    public void Keep(TKey key, string path, TValue value)
    {
        if (Libc.Stamp(path) is { } stamp)
        {
            if (_entries.Count >= limit)
            {
                _entries.Clear();
            }
            _entries[key] = (stamp, value);
        }
    }
}
