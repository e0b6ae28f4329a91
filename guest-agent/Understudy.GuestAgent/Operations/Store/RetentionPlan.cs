using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// What retention does with a group's checkpoints: the newest <c>keep</c> stay, and so does every
/// checkpoint they need, followed through the real base chain (<see cref="CheckpointChains"/>), not
/// back to the last full one: after a restore, the next incremental checkpoint applies to the
/// restored one, wherever it is. Of the others, those held (pinned, or read by a merge) stay for now
/// and the rest are deleted.
/// </summary>
/// <param name="Delete">not needed and not held: deleted now.</param>
/// <param name="Held">not needed but held: deleted once released.</param>
/// <param name="KeepsBases">
/// more than the newest <c>keep</c> stay because those apply to them: once a merge has made them
/// full, they need nothing, and retention should run again.
/// </param>
internal sealed record RetentionPlan(IReadOnlyList<CheckpointInfo> Delete, IReadOnlyList<CheckpointInfo> Held, bool KeepsBases)
{
    /// <param name="usable">the group's committed checkpoints whose manifests are readable, oldest first</param>
    /// <param name="basesOf">the checkpoints one applies to directly</param>
    /// <param name="isHeld">whether a checkpoint, by seq, is held</param>
    public static RetentionPlan Decide(
        IReadOnlyList<CheckpointInfo> usable, int keep, Func<CheckpointInfo, IEnumerable<long>> basesOf, Func<long, bool> isHeld)
    {
        var bySeq = usable.ToDictionary(c => c.Seq);
        var needed = new HashSet<long>();
        var pending = new Stack<CheckpointInfo>(usable.TakeLast(Math.Max(keep, 0)));
        while (pending.TryPop(out var checkpoint))
        {
            if (!needed.Add(checkpoint.Seq))
            {
                continue;
            }
            foreach (var baseSeq in basesOf(checkpoint))
            {
                if (bySeq.TryGetValue(baseSeq, out var baseCheckpoint))
                {
                    pending.Push(baseCheckpoint);
                }
            }
        }
        var unneeded = usable.Where(c => !needed.Contains(c.Seq)).ToList();
        return new RetentionPlan(
            unneeded.Where(c => !isHeld(c.Seq)).ToList(), unneeded.Where(c => isHeld(c.Seq)).ToList(), needed.Count > Math.Max(keep, 0));
    }
}
