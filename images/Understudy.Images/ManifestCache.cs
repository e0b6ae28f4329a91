using System.Collections.Concurrent;

namespace Understudy.Images;

/// <summary>
/// Manifests already parsed, each with the stamp (<see cref="Libc.Stamp"/>) of the file it was read
/// from: a manifest whose file has the same device, inode, size and change time is not read and
/// parsed again. The agent reads a group's whole chain of manifests several times per checkpoint
/// (the kind policy, the replicator's pin, retention, listings), so that without this the cost of
/// a checkpoint grew with its chain. A commit, a merge's rename and a deletion all change the stamp.
/// </summary>
internal sealed class ManifestCache
{
    // Enough for every group's chain and retention; past it the cache starts over, so that the
    // manifests of deleted checkpoints do not pile up.
    private const int MaxEntries = 4096;
    // The kernel's file times are coarse (a clock tick): a rewrite of the same size within one
    // could keep the stamp. A file changed more recently than this is read every time.
    private static readonly TimeSpan Settled = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, (FileStamp Stamp, CheckpointManifest Manifest)> _entries = new(StringComparer.Ordinal);

    /// <exception cref="ImageFormatException">The manifest is missing, unreadable or not valid.</exception>
    public CheckpointManifest Load(string path)
    {
        // Stamped before it is read: a change while it is read gives another stamp next time.
        if (Libc.Stamp(path) is not { } stamp)
        {
            return CheckpointManifest.Load(path);
        }
        if (_entries.TryGetValue(path, out var known) && known.Stamp == stamp)
        {
            return known.Manifest;
        }
        var manifest = CheckpointManifest.Load(path);
        if (DateTimeOffset.UtcNow - stamp.Changed < Settled)
        {
            return manifest;
        }
        if (_entries.Count >= MaxEntries)
        {
            _entries.Clear();
        }
        _entries[path] = (stamp, manifest);
        return manifest;
    }
}
