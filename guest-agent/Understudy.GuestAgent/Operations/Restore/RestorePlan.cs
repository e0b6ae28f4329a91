using System.Text;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Restore;

/// <summary>One image of a process's chain: the file names of one member of one checkpoint.</summary>
internal sealed record ChainImage(string CheckpointId, int Vpid, string Meta, string Pages);

/// <summary>
/// Which images us-init restores each process from (docs/protocol.md, "Restore plan"): the
/// member's image in the restored checkpoint, then, while that is incremental, the image it
/// applies to (<see cref="ManifestMember.BaseImageVpid"/> in <see cref="ManifestMember.BaseSeq"/>:
/// the parent's for a process forked since), down to a full one. The restorer takes each page from
/// the newest image of the chain that has it: nothing is merged first. It also says where the
/// group's output log was when the checkpoint was taken, so that us-init can open this node's
/// in its place.
/// </summary>
internal sealed class RestorePlan
{
    /// <summary>As many images of one process as the restorer reads (native/src/restorer/layers.h).</summary>
    public const int MaxChainLength = 256;

    private const string Header = "understudy-restore-plan 1";

    private RestorePlan(IReadOnlyDictionary<int, IReadOnlyList<ChainImage>> chains, string? outputLogWas)
    {
        Chains = chains;
        OutputLogWas = outputLogWas;
    }

    /// <summary>Each process's chain by vpid, newest image first.</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<ChainImage>> Chains { get; }

    /// <summary>The group's output log where the checkpoint was taken (its manifest's), or null when not recorded.</summary>
    public string? OutputLogWas { get; }

    /// <summary>The longest chain: 1 when every image is full.</summary>
    public int LongestChain => Chains.Values.Max(c => c.Count);

    /// <summary>
    /// The chains of checkpoint <paramref name="id"/>, read from the manifests. The caller has
    /// pinned the checkpoint (nothing rewrites or deletes its chain) and verified it.
    /// </summary>
    /// <exception cref="ImageFormatException">A base is missing, or a chain is longer than the restorer reads.</exception>
    /// <exception cref="CheckpointNotFoundException">A base checkpoint is gone.</exception>
    public static RestorePlan For(CheckpointStore store, string group, string id, CheckpointManifest manifest)
    {
        var manifests = new Dictionary<long, CheckpointManifest> { [CheckpointId.Parse(id)] = manifest };
        CheckpointManifest Load(long seq)
        {
            if (!manifests.TryGetValue(seq, out var loaded))
            {
                loaded = store.LoadManifest(group, CheckpointId.Format(seq));
                manifests[seq] = loaded;
            }
            return loaded;
        }

        var chains = new Dictionary<int, IReadOnlyList<ChainImage>>();
        foreach (var member in manifest.Members)
        {
            var chain = new List<ChainImage> { new(id, member.Vpid, member.Meta, member.Pages) };
            for (var image = member; image.IsIncremental;)
            {
                if (chain.Count == MaxChainLength)
                {
                    throw new ImageFormatException(
                        $"checkpoint {group}/{id} cannot be restored: the image of process {member.Vpid} has a chain of more than {MaxChainLength} images; let the background merges run");
                }
                var baseId = CheckpointId.Format(image.BaseSeq);
                image = Load(image.BaseSeq).Members.FirstOrDefault(m => m.Vpid == image.BaseImageVpid)
                    ?? throw new ImageFormatException(
                        $"checkpoint {group}/{id} cannot be restored: checkpoint {baseId} has no process {image.BaseImageVpid}, whose image process {member.Vpid} needs");
                chain.Add(new ChainImage(baseId, image.Vpid, image.Meta, image.Pages));
            }
            chains[member.Vpid] = chain;
        }
        return new RestorePlan(chains, manifest.OutputLog);
    }

    /// <summary>The plan as us-init reads it: file names relative to the group's checkpoints directory.</summary>
    public string Render()
    {
        var text = new StringBuilder(Header).Append('\n');
        if (OutputLogWas is not null)
        {
            text.Append($"output-was {TokenCodec.Encode(OutputLogWas)}\n");
        }
        foreach (var (vpid, chain) in Chains.OrderBy(c => c.Key))
        {
            text.Append($"process {vpid} {chain.Count}\n");
            foreach (var image in chain)
            {
                text.Append($"image {image.CheckpointId} {image.Vpid} {image.Meta} {image.Pages}\n");
            }
        }
        return text.ToString();
    }

    /// <summary>Writes the plan to <paramref name="path"/>, readable by its owner alone, replacing what was there.</summary>
    public void WriteTo(string path)
    {
        File.Delete(path);
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        file.Write(Encoding.UTF8.GetBytes(Render()));
    }
}
