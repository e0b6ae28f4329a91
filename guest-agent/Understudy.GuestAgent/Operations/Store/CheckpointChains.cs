using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// How a group's checkpoints depend on each other. An incremental member's image applies to the
/// image of <see cref="ManifestMember.BaseImageVpid"/> (its own vpid's, or its parent's for a
/// process forked since) in checkpoint <see cref="ManifestMember.BaseSeq"/>: so a checkpoint needs
/// every checkpoint its incremental members name, and whatever those need in turn. A merged
/// checkpoint needs none, its images are full; <see cref="CheckpointInfo.BaseSeq"/> still names the
/// base it was merged onto, which is why the manifests' members are read here.
/// </summary>
internal static class CheckpointChains
{
    /// <summary>The checkpoints the images of <paramref name="manifest"/> apply to directly.</summary>
    public static IEnumerable<long> BasesOf(CheckpointManifest manifest) =>
        manifest.Members.Where(m => m.IsIncremental).Select(m => m.BaseSeq).Distinct();

    /// <summary>
    /// The checkpoint and every checkpoint it needs, by seq. A base that is gone or unreadable ends
    /// its branch (such a chain is broken anyway, and says so when it is verified or merged).
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">The checkpoint itself does not exist.</exception>
    /// <exception cref="ImageFormatException">Its manifest is corrupt.</exception>
    public static IReadOnlySet<long> Closure(CheckpointStore store, string group, long seq) => Closure(store, group, seq, held: _ => false);

    /// <summary>
    /// What a node that holds the checkpoints <paramref name="held"/> says lacks of the checkpoint's
    /// chain: the checkpoint unless held, and each base it needs, down every branch until one the
    /// node holds (it holds every checkpoint that one needs: it committed it only with its bases,
    /// and keeps them while it keeps it). A node that merged a checkpoint and let its bases go
    /// needs them no more.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">The checkpoint itself does not exist.</exception>
    /// <exception cref="ImageFormatException">Its manifest is corrupt.</exception>
    public static IReadOnlySet<long> Lacking(CheckpointStore store, string group, long seq, Func<long, bool> held) =>
        Closure(store, group, seq, held);

    private static HashSet<long> Closure(CheckpointStore store, string group, long seq, Func<long, bool> held)
    {
        var closure = new HashSet<long>();
        var pending = new Stack<long>([seq]);
        while (pending.TryPop(out var next))
        {
            if (held(next) || !closure.Add(next))
            {
                continue;
            }
            if (Load(store, group, next, required: next == seq) is { } manifest)
            {
                foreach (var baseSeq in BasesOf(manifest))
                {
                    pending.Push(baseSeq);
                }
            }
        }
        return closure;
    }

    /// <summary>
    /// What a merge of the checkpoint rewrites: the checkpoint, if it still has incremental images,
    /// and before it every base whose image one of them applies to that is itself still incremental
    /// (CheckpointMerger merges such a base first, whole).
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">The checkpoint itself does not exist.</exception>
    /// <exception cref="ImageFormatException">Its manifest is corrupt.</exception>
    public static IReadOnlySet<long> RewrittenByMerge(CheckpointStore store, string group, long seq)
    {
        var rewritten = new HashSet<long>();
        var pending = new Stack<long>([seq]);
        while (pending.TryPop(out var next))
        {
            if (rewritten.Contains(next) || Load(store, group, next, required: next == seq) is not { HasIncrementalMembers: true } manifest)
            {
                continue;
            }
            rewritten.Add(next);
            foreach (var member in manifest.Members.Where(m => m.IsIncremental))
            {
                var baseImage = Load(store, group, member.BaseSeq, required: false)?.Members.FirstOrDefault(b => b.Vpid == member.BaseImageVpid);
                if (baseImage is { IsIncremental: true })
                {
                    pending.Push(member.BaseSeq);
                }
            }
        }
        return rewritten;
    }

    private static CheckpointManifest? Load(CheckpointStore store, string group, long seq, bool required)
    {
        try
        {
            return store.LoadManifest(group, CheckpointId.Format(seq));
        }
        catch (Exception e) when (!required && e is CheckpointNotFoundException or ImageFormatException)
        {
            return null;
        }
    }
}
