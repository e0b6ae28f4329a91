namespace Understudy.Images;

/// <summary>One process of a checkpoint, as listed in manifest.json.</summary>
/// <param name="Meta">File name of the .meta, relative to the checkpoint directory.</param>
/// <param name="MetaCrc32c">CRC-32C of the whole .meta file.</param>
/// <param name="Pages">File name of the .pages, relative to the checkpoint directory.</param>
public sealed record ManifestMember(
    int Vpid,
    int Vppid,
    string App,
    int ExecCount,
    string Meta,
    long MetaBytes,
    uint MetaCrc32c,
    string Pages,
    long PagesBytes)
{
    /// <summary>
    /// Describes the member whose &lt;vpid&gt;.meta and &lt;vpid&gt;.pages a process wrote into
    /// <paramref name="checkpointDir"/>: sizes and the .meta checksum come from the files.
    /// </summary>
    public static ManifestMember FromFiles(string checkpointDir, int vpid, int vppid, string app, int execCount)
    {
        string meta = $"{vpid}.meta", pages = $"{vpid}.pages";
        byte[] metaBytes = File.ReadAllBytes(Path.Combine(checkpointDir, meta));
        long pagesBytes = new FileInfo(Path.Combine(checkpointDir, pages)).Length;
        return new(vpid, vppid, app, execCount, meta, metaBytes.Length, Crc32C.Compute(metaBytes), pages, pagesBytes);
    }
}
