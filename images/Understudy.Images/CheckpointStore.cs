namespace Understudy.Images;

/// <summary>
/// The checkpoints of a state directory (docs/protocol.md):
/// STATE/groups/&lt;group&gt;/staging/&lt;id&gt;/ while being written, and
/// STATE/groups/&lt;group&gt;/checkpoints/&lt;id&gt;/ once committed with its manifest.json.
/// Directories are created 0700 and the manifest 0600.
/// </summary>
public sealed class CheckpointStore(string stateDir)
{
    private const string GroupsDirName = "groups";
    private const string StagingDirName = "staging";
    private const string CheckpointsDirName = "checkpoints";
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode ManifestMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string StateDir { get; } = Path.GetFullPath(stateDir);

    /// <exception cref="ArgumentException">The group name is not valid.</exception>
    public string GroupDir(string group)
    {
        GroupName.Validate(group);
        return Path.Combine(StateDir, GroupsDirName, group);
    }

    /// <summary>The directory of a committed checkpoint, whether or not it exists.</summary>
    public string CheckpointDir(string group, string id)
    {
        CheckpointId.Parse(id);
        return Path.Combine(GroupDir(group), CheckpointsDirName, id);
    }

    /// <summary>
    /// Claims the next checkpoint id of <paramref name="group"/> (one more than any committed or
    /// staging one) and creates its empty staging directory.
    /// </summary>
    public (string Id, long Seq, string Dir) CreateStaging(string group)
    {
        string staging = Path.Combine(GroupDir(group), StagingDirName);
        CreateDirectories(staging);
        long seq = 1 + Math.Max(MaxSeq(staging), MaxSeq(Path.Combine(GroupDir(group), CheckpointsDirName)));
        // mkdir fails on an existing name, so two concurrent callers never share an id.
        while (true)
        {
            string id = CheckpointId.Format(seq);
            string dir = Path.Combine(staging, id);
            if (Libc.TryMakeDirectory(dir, DirMode))
            {
                File.SetUnixFileMode(dir, DirMode); // mkdir's mode passed through the umask
                return (id, seq, dir);
            }
            seq++;
        }
    }

    public void DiscardStaging(string group, string id)
    {
        CheckpointId.Parse(id);
        string dir = Path.Combine(GroupDir(group), StagingDirName, id);
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    /// <summary>Removes every staging directory of the group: what a crash left behind.</summary>
    public void DiscardAllStaging(string group)
    {
        string staging = Path.Combine(GroupDir(group), StagingDirName);
        if (!Directory.Exists(staging))
            return;
        foreach (string dir in Directory.EnumerateDirectories(staging))
            Directory.Delete(dir, recursive: true);
    }

    /// <summary>
    /// Makes staging checkpoint <paramref name="id"/> a committed checkpoint: writes its
    /// manifest.json (0600) and fsyncs it and the directory, renames the directory into
    /// checkpoints/ and fsyncs that. A crash before the rename leaves only staging debris.
    /// </summary>
    /// <exception cref="ArgumentException">The manifest does not belong to this group and id.</exception>
    /// <exception cref="CheckpointNotFoundException">There is no such staging checkpoint.</exception>
    /// <exception cref="InvalidOperationException">The id is already committed.</exception>
    public CheckpointInfo Commit(string group, string id, CheckpointManifest manifest)
    {
        long seq = CheckpointId.Parse(id);
        if (manifest.Group != group || manifest.Id != id || manifest.Seq != seq
            || manifest.Format != CheckpointManifest.FormatName || manifest.Version != CheckpointManifest.CurrentVersion)
        {
            throw new ArgumentException(
                $"manifest of {manifest.Format} v{manifest.Version} {manifest.Group}/{manifest.Id} (seq {manifest.Seq}) cannot commit checkpoint {group}/{id}",
                nameof(manifest));
        }
        string staged = Path.Combine(GroupDir(group), StagingDirName, id);
        if (!Directory.Exists(staged))
            throw new CheckpointNotFoundException(group, id, $"no staging checkpoint {id} in group {group} to commit; it was discarded or never created");
        string checkpoints = Path.Combine(GroupDir(group), CheckpointsDirName);
        string committed = Path.Combine(checkpoints, id);
        if (Directory.Exists(committed))
            throw new InvalidOperationException($"checkpoint {group}/{id} is already committed; a new checkpoint needs a new staging id");

        WriteDurably(Path.Combine(staged, CheckpointManifest.FileName), manifest.ToJson());
        Libc.FsyncDirectory(staged);
        CreateDirectories(checkpoints);
        Directory.Move(staged, committed);
        // The rename changed both parents; the checkpoints entry is the one that makes it exist.
        Libc.FsyncDirectory(checkpoints);
        Libc.FsyncDirectory(Path.GetDirectoryName(staged)!);
        return Describe(group, id, committed);
    }

    /// <summary>
    /// Committed checkpoints, ordered by group then seq. A checkpoint whose manifest is unreadable
    /// is listed with kind "corrupt" rather than hidden or allowed to fail the listing, so that an
    /// operator sees it and <see cref="Verify"/> can say what is wrong.
    /// </summary>
    public IReadOnlyList<CheckpointInfo> List(string? group = null)
    {
        IEnumerable<string> groups;
        if (group is not null)
        {
            GroupName.Validate(group);
            groups = [group];
        }
        else
        {
            string groupsDir = Path.Combine(StateDir, GroupsDirName);
            groups = Directory.Exists(groupsDir)
                ? Directory.EnumerateDirectories(groupsDir).Select(Path.GetFileName).OfType<string>().Where(g => GroupName.Problem(g) is null)
                : [];
        }

        return groups
            .SelectMany(g => CommittedIds(g).Select(c => Describe(g, c.Id, c.Dir)))
            .OrderBy(c => c.Group, StringComparer.Ordinal)
            .ThenBy(c => c.Seq)
            .ToList();
    }

    /// <summary>
    /// The newest committed checkpoint whose manifest is readable, or null. A corrupt newer one is
    /// passed over, so that restores and incremental bases use the newest checkpoint that can work.
    /// </summary>
    public string? NewestId(string group) =>
        List(group).LastOrDefault(c => c.Kind != CheckpointInfo.CorruptKind)?.Id;

    /// <summary>
    /// Checks a committed checkpoint end to end: the manifest; for every member the .meta size and
    /// CRC-32C against the manifest, the decoded image, its vpid and seq, and every page run.
    /// Reads all page data, so it costs a full read of the checkpoint.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">No such group or checkpoint.</exception>
    /// <exception cref="ImageFormatException">Something does not match; the message names the file and the reason.</exception>
    public CheckpointManifest Verify(string group, string id)
    {
        (CheckpointManifest manifest, string dir) = LoadCommitted(group, id);
        var location = ImageLocation.OfCheckpoint(group, id);
        foreach (ManifestMember member in manifest.Members)
        {
            string metaPath = Path.Combine(dir, member.Meta);
            byte[] meta = ImageLocation.OfFile(metaPath).Guard(metaPath, () => File.ReadAllBytes(metaPath));
            if (meta.Length != member.MetaBytes)
                throw location.Corrupt($"{member.Meta} is {meta.Length} bytes but the manifest says {member.MetaBytes}");
            uint crc = Crc32C.Compute(meta);
            if (crc != member.MetaCrc32c)
                throw location.Corrupt($"{member.Meta} checksum 0x{crc:x8} differs from the manifest's 0x{member.MetaCrc32c:x8}");

            ProcessImage image = ProcessImage.ReadMeta(metaPath);
            if (image.Header.Vpid != member.Vpid)
                throw location.Corrupt($"{member.Meta} holds vpid {image.Header.Vpid} but the manifest lists it for vpid {member.Vpid}");
            if (image.Header.CheckpointSeq != (ulong)manifest.Seq)
                throw location.Corrupt($"{member.Meta} belongs to checkpoint seq {image.Header.CheckpointSeq}, not {manifest.Seq}");
            if (manifest.Kind == CheckpointManifest.FullKind && image.Header.Kind != ImageKind.Full)
                throw location.Corrupt($"{member.Meta} is an incremental image in a full checkpoint");

            string pagesPath = Path.Combine(dir, member.Pages);
            long pagesBytes = ImageLocation.OfFile(pagesPath).Guard(pagesPath, () => new FileInfo(pagesPath).Length);
            if (pagesBytes != member.PagesBytes)
                throw location.Corrupt($"{member.Pages} is {pagesBytes} bytes but the manifest says {member.PagesBytes}");
            image.VerifyPages(pagesPath);
        }
        return manifest;
    }

    /// <summary>
    /// The manifest and every member's decoded image as indented camelCase JSON, for
    /// <c>hactl images inspect</c>. Page data is not read; <see cref="Verify"/> does that.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">No such group or checkpoint.</exception>
    /// <exception cref="ImageFormatException">The manifest or an image is corrupt.</exception>
    public string InspectJson(string group, string id)
    {
        (CheckpointManifest manifest, string dir) = LoadCommitted(group, id);
        var images = manifest.Members.Select(m => ProcessImage.ReadMeta(Path.Combine(dir, m.Meta))).ToList();
        return CheckpointInspector.ToJson(manifest, images);
    }

    private (CheckpointManifest Manifest, string Dir) LoadCommitted(string group, string id)
    {
        string dir = CheckpointDir(group, id);
        string manifestPath = Path.Combine(dir, CheckpointManifest.FileName);
        if (!File.Exists(manifestPath))
            throw new CheckpointNotFoundException(group, id, $"no checkpoint {id} in group {group}; see hactl images list {group}");
        CheckpointManifest manifest = CheckpointManifest.Load(manifestPath);
        if (manifest.Group != group || manifest.Id != id)
            throw ImageLocation.OfCheckpoint(group, id).Corrupt($"its manifest describes checkpoint {manifest.Group}/{manifest.Id}");
        return (manifest, dir);
    }

    private IEnumerable<(string Id, string Dir)> CommittedIds(string group)
    {
        string checkpoints = Path.Combine(GroupDir(group), CheckpointsDirName);
        if (!Directory.Exists(checkpoints))
            return [];
        return Directory.EnumerateDirectories(checkpoints)
            .Where(dir => CheckpointId.TryParse(Path.GetFileName(dir), out _) && File.Exists(Path.Combine(dir, CheckpointManifest.FileName)))
            .Select(dir => (Path.GetFileName(dir), dir));
    }

    private static CheckpointInfo Describe(string group, string id, string dir)
    {
        long seq = CheckpointId.Parse(id);
        try
        {
            CheckpointManifest m = CheckpointManifest.Load(Path.Combine(dir, CheckpointManifest.FileName));
            if (m.Group == group && m.Id == id)
                return new CheckpointInfo(group, id, seq, m.Kind, m.Bytes, m.CreatedUtc, m.Members.Count, dir);
        }
        catch (ImageFormatException)
        {
            // Listed as corrupt below: one bad checkpoint must not hide the others.
        }
        return new CheckpointInfo(group, id, seq, CheckpointInfo.CorruptKind, 0, Directory.GetLastWriteTimeUtc(dir), 0, dir);
    }

    /// <summary>
    /// Creates <paramref name="dir"/> and its missing parents 0700, level by level:
    /// Directory.CreateDirectory applies its mode to the last level only.
    /// </summary>
    private static void CreateDirectories(string dir)
    {
        if (Directory.Exists(dir))
            return;
        if (Path.GetDirectoryName(dir) is { } parent)
            CreateDirectories(parent);
        Directory.CreateDirectory(dir, DirMode);
    }

    private static long MaxSeq(string dir) => Directory.Exists(dir)
        ? Directory.EnumerateDirectories(dir)
            .Select(d => CheckpointId.TryParse(Path.GetFileName(d), out long seq) ? seq : 0)
            .DefaultIfEmpty(0)
            .Max()
        : 0;

    private static void WriteDurably(string path, string text)
    {
        // Create, not CreateNew: a commit retried after a failed fsync rewrites the same manifest.
        using var file = File.OpenHandle(path, FileMode.Create, FileAccess.Write);
        File.SetUnixFileMode(file, ManifestMode); // before any byte is written
        RandomAccess.Write(file, System.Text.Encoding.UTF8.GetBytes(text), 0);
        RandomAccess.FlushToDisk(file);
    }
}
