using System.Collections.Concurrent;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Which committed checkpoint each group's running processes descend from: the last one
/// committed, or the one just restored. Only then can an incremental checkpoint apply to it. A
/// fresh agent knows none (its groups were all stopped), so a group's first checkpoint is full.
/// </summary>
internal sealed class CheckpointLineage
{
    private readonly ConcurrentDictionary<string, long> _bases = new(StringComparer.Ordinal);

    /// <summary>The seq the group's processes descend from, or null.</summary>
    public long? BaseOf(string group) => _bases.TryGetValue(group, out var seq) ? seq : null;

    /// <summary>A checkpoint of the group was committed: its processes continue from it.</summary>
    public void Committed(string group, long seq) => _bases[group] = seq;

    /// <summary>The group was restored from <paramref name="seq"/>: its processes are that checkpoint's.</summary>
    public void Restored(string group, long seq) => _bases[group] = seq;
}
