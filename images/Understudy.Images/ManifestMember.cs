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
/// <param name="BaseSeq">Incremental: the checkpoint whose image of the same vpid this one applies to; 0 for full.</param>
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
    long BaseSeq = 0)
{
    [JsonIgnore]
    public bool IsIncremental => Kind == CheckpointManifest.IncrementalKind;

    /// <summary>
    /// Describes the member whose &lt;vpid&gt;.meta and &lt;vpid&gt;.pages a process wrote into
    /// <paramref name="checkpointDir"/>: sizes and the .meta checksum come from the files, and
    /// the kind and base from the image's header, which is checked on the way.
    /// </summary>
    /// <exception cref="ImageFormatException">The .meta file is not a valid image.</exception>
    public static ManifestMember FromFiles(string checkpointDir, int vpid, int vppid, string app, int execCount) =>
        FromFiles(checkpointDir, $"{vpid}.meta", $"{vpid}.pages", vpid, vppid, app, execCount);

    /// <summary>Like <see cref="FromFiles(string, int, int, string, int)"/> for files of any name (a merge writes new ones).</summary>
    /// <exception cref="ImageFormatException">The .meta file is not a valid image.</exception>
    public static ManifestMember FromFiles(string checkpointDir, string meta, string pages, int vpid, int vppid, string app, int execCount)
    {
        string metaPath = Path.Combine(checkpointDir, meta);
        (byte[] metaBytes, MetaHeader header) = ImageLocation.OfFile(metaPath).Guard(metaPath, () =>
        {
            byte[] bytes = File.ReadAllBytes(metaPath);
            return (bytes, MetaParser.Parse(bytes).Header);
        });
        long pagesBytes = new FileInfo(Path.Combine(checkpointDir, pages)).Length;
        return new(vpid, vppid, app, execCount, meta, metaBytes.Length, Crc32C.Compute(metaBytes), pages, pagesBytes,
            ImageNames.Of(header.Kind), header.BaseSeq);
    }
}
