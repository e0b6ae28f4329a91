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
    /// The most images one merge pass reads (a restore reads at most as many, docs/image-format.md):
    /// a longer chain is merged in steps, each of them a checkpoint of it rewritten full.
    /// </summary>
    public const int MaxImagesPerMerge = 256;

    /// <summary>
    /// What a merge of the checkpoint rewrites: the checkpoint, if it still has incremental images,
    /// and the steps of any chain of its images longer than <see cref="MaxImagesPerMerge"/>
    /// (<see cref="MergeSteps"/>). The bases of a chain merged in one pass stay as they are.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">The checkpoint itself does not exist.</exception>
    /// <exception cref="ImageFormatException">Its manifest is corrupt.</exception>
    public static IReadOnlySet<long> RewrittenByMerge(CheckpointStore store, string group, long seq)
    {
        var manifest = store.LoadManifest(group, CheckpointId.Format(seq));
        var rewritten = new HashSet<long>();
        if (!manifest.HasIncrementalMembers)
        {
            return rewritten;
        }
        rewritten.Add(seq);
        foreach (var member in manifest.Members.Where(m => m.IsIncremental))
        {
            rewritten.UnionWith(MergeSteps(ImageChain(store, group, seq, member)).Select(link => link.Seq));
        }
        return rewritten;
    }

    /// <summary>One image of a chain: the checkpoint it is in, and its member there.</summary>
    public sealed record ChainImage(long Seq, ManifestMember Member);

    /// <summary>
    /// The images <paramref name="member"/> of checkpoint <paramref name="seq"/> is made of, oldest
    /// first: a full image, then each increment applied to the one before, ending with the member's
    /// own. A base that is gone or unreadable ends the chain early (its first image is then
    /// incremental: the merge refuses it, naming what is missing); so does a base that is not older
    /// than the image applied to it (a corrupt manifest).
    /// </summary>
    public static IReadOnlyList<ChainImage> ImageChain(CheckpointStore store, string group, long seq, ManifestMember member)
    {
        var chain = new List<ChainImage> { new(seq, member) };
        while (member.IsIncremental && member.BaseSeq < seq
            && Load(store, group, member.BaseSeq, required: false)?.Members.FirstOrDefault(b => b.Vpid == member.BaseImageVpid) is { } below)
        {
            seq = member.BaseSeq;
            member = below;
            chain.Add(new(seq, member));
        }
        chain.Reverse();
        return chain;
    }

    /// <summary>
    /// The checkpoints of a chain (oldest first) that a merge rewrites full before its last one, so
    /// that no pass reads more than <see cref="MaxImagesPerMerge"/> images: every
    /// (<see cref="MaxImagesPerMerge"/> - 1)-th increment counted from its full image, oldest first.
    /// </summary>
    public static IEnumerable<ChainImage> MergeSteps(IReadOnlyList<ChainImage> chain)
    {
        for (int i = MaxImagesPerMerge - 1; i < chain.Count - 1; i += MaxImagesPerMerge - 1)
        {
            yield return chain[i];
        }
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
