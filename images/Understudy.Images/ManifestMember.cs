using System.Text.Json.Serialization;

namespace Understudy.Images;

/// <summary>One process of a checkpoint, as listed in manifest.json.</summary>
/// <param name="Meta">File name of the .meta, relative to the checkpoint directory.</param>
/// <param name="MetaCrc32c">CRC-32C of the whole .meta file.</param>
/// <param name="Pages">File name of the .pages, relative to the checkpoint directory.</param>
/// <param name="Kind">
/// "full" or "incremental": the kind of image the process wrote (it may write a full one when an
/// incremental one was asked). Absent in manifests written before incremental checkpoints: full.
/// </param>
/// <param name="BaseSeq">Incremental: the checkpoint whose image this one applies to; 0 for full.</param>
/// <param name="BaseVpid">
/// Incremental: the vpid of the image in checkpoint <paramref name="BaseSeq"/> this one applies
/// to, when it is not the member's own. A process forked since the base checkpoint is not in it:
/// its first incremental image applies to its parent's image there. Null (absent in JSON) means
/// the member's own vpid; see <see cref="BaseImageVpid"/>.
/// </param>
public sealed record ManifestMember(
    int Vpid,
    int Vppid,
    string App,
    int ExecCount,
    string Meta,
    long MetaBytes,
    uint MetaCrc32c,
    string Pages,
    long PagesBytes,
    string Kind = CheckpointManifest.FullKind,
    long BaseSeq = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? BaseVpid = null)
{
    [JsonIgnore]
    public bool IsIncremental => Kind == CheckpointManifest.IncrementalKind;

    /// <summary>Incremental: the vpid whose image in checkpoint <see cref="BaseSeq"/> this one applies to.</summary>
    [JsonIgnore]
    public int BaseImageVpid => BaseVpid ?? Vpid;

    /// <summary>
    /// Describes the member whose &lt;vpid&gt;.meta and &lt;vpid&gt;.pages a process wrote into
    /// <paramref name="checkpointDir"/>: sizes and the .meta checksum come from the files, and
    /// the kind and base checkpoint from the image's header, which is checked on the way.
    /// </summary>
    /// <param name="baseVpid">
    /// Whose image in the base checkpoint an incremental image applies to, when not the
    /// member's own (a process forked since then: its parent's). The header does not say; the
    /// caller knows. Recorded only for an incremental image and only when it differs from
    /// <paramref name="vpid"/>, so that a full image or the usual case keeps it null.
    /// </param>
    /// <exception cref="ImageFormatException">The .meta file is not a valid image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="baseVpid"/> is not a pid.</exception>
    public static ManifestMember FromFiles(string checkpointDir, int vpid, int vppid, string app, int execCount, int? baseVpid = null) =>
        FromFiles(checkpointDir, $"{vpid}.meta", $"{vpid}.pages", vpid, vppid, app, execCount, baseVpid);

    /// <summary>Like <see cref="FromFiles(string, int, int, string, int, int?)"/> for files of any name (a merge writes new ones).</summary>
    /// <exception cref="ImageFormatException">The .meta file is not a valid image.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="baseVpid"/> is not a pid.</exception>
    public static ManifestMember FromFiles(string checkpointDir, string meta, string pages, int vpid, int vppid, string app, int execCount, int? baseVpid = null)
    {
        if (baseVpid is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(baseVpid), baseVpid, "a base vpid is a pid, 1 or more");
        }

        string metaPath = Path.Combine(checkpointDir, meta);
        (byte[] metaBytes, MetaHeader header) = ImageLocation.OfFile(metaPath).Guard(metaPath, () =>
        {
            byte[] bytes = File.ReadAllBytes(metaPath);
            return (bytes, MetaParser.Parse(bytes).Header);
        });
        long pagesBytes = new FileInfo(Path.Combine(checkpointDir, pages)).Length;
        int? otherBase = header.Kind == ImageKind.Incremental && baseVpid != vpid ? baseVpid : null;
        return new(vpid, vppid, app, execCount, meta, metaBytes.Length, Crc32C.Compute(metaBytes), pages, pagesBytes,
            ImageNames.Of(header.Kind), header.BaseSeq, otherBase);
    }
}
