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

    // Manifests already parsed: the agent reads a group's whole chain of them several times per
    // checkpoint (the kind policy, the replicator's pin, retention, listings).
    private readonly StampedCache<string, CheckpointManifest> _manifests = new(limit: 4096);

    public string StateDir { get; } = Path.GetFullPath(stateDir);

    /// <summary>STATE/groups, which holds a directory per group.</summary>
    public string GroupsDir => Path.Combine(StateDir, GroupsDirName);

    /// <exception cref="ArgumentException">The group name is not valid.</exception>
    public string GroupDir(string group)
    {
        GroupName.Validate(group);
        return Path.Combine(GroupsDir, group);
    }

    /// <summary>The groups that have a directory (with a valid name), in name order.</summary>
    public IReadOnlyList<string> GroupNames() => Directory.Exists(GroupsDir)
        ? Directory.EnumerateDirectories(GroupsDir).Select(Path.GetFileName).OfType<string>()
            .Where(g => GroupName.Problem(g) is null).Order(StringComparer.Ordinal).ToList()
        : [];

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

    /// <summary>
    /// The staging directory of checkpoint <paramref name="id"/> of <paramref name="group"/>, created
    /// empty if it does not exist, kept as it is if it does: a copy of another node's checkpoint is
    /// received under that checkpoint's own id, and a broken transfer goes on where it stopped.
    /// </summary>
    /// <exception cref="InvalidOperationException">The id is already committed.</exception>
    public string OpenStaging(string group, string id)
    {
        CheckpointId.Parse(id);
        if (Directory.Exists(CheckpointDir(group, id)))
        {
            throw new InvalidOperationException($"checkpoint {group}/{id} is already committed");
        }
        string staging = Path.Combine(GroupDir(group), StagingDirName);
        CreateDirectories(staging);
        string dir = Path.Combine(staging, id);
        if (Libc.TryMakeDirectory(dir, DirMode))
        {
            File.SetUnixFileMode(dir, DirMode);
        }
        return dir;
    }

    /// <summary>Where staging checkpoint <paramref name="id"/> of <paramref name="group"/> is (or would be).</summary>
    public string StagingPath(string group, string id)
    {
        CheckpointId.Parse(id);
        return Path.Combine(GroupDir(group), StagingDirName, id);
    }

    /// <summary>The group's staging checkpoints, by id, with each file and its length: what is being written or received.</summary>
    public IReadOnlyList<(string Id, IReadOnlyList<(string Name, long Length)> Files)> Staging(string group)
    {
        string staging = Path.Combine(GroupDir(group), StagingDirName);
        if (!Directory.Exists(staging))
        {
            return [];
        }
        return Directory.EnumerateDirectories(staging)
            .Select(d => (Id: Path.GetFileName(d), Dir: d))
            .Where(d => CheckpointId.TryParse(d.Id, out _))
            .OrderBy(d => d.Id, StringComparer.Ordinal)
            .Select(d => (d.Id, (IReadOnlyList<(string, long)>)new DirectoryInfo(d.Dir).EnumerateFiles()
                .Select(f => (f.Name, f.Length)).OrderBy(f => f.Name, StringComparer.Ordinal).ToList()))
            .ToList();
    }

    public void DiscardStaging(string group, string id)
    {
        CheckpointId.Parse(id);
        string dir = Path.Combine(GroupDir(group), StagingDirName, id);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Removes every staging directory of the group: what a crash left behind.</summary>
    public void DiscardAllStaging(string group)
    {
        string staging = Path.Combine(GroupDir(group), StagingDirName);
        if (!Directory.Exists(staging))
        {
            return;
        }

        foreach (string dir in Directory.EnumerateDirectories(staging))
        {
            Directory.Delete(dir, recursive: true);
        }
        // What was kept beside them (a received copy's origin).
        foreach (string file in Directory.EnumerateFiles(staging))
        {
            File.Delete(file);
        }
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
        // Round trip through the reader's checks: a checkpoint is never committed with a manifest
        // that will not load.
        try
        {
            CheckpointManifest.FromJson(manifest.ToJson());
        }
        catch (ImageFormatException e)
        {
            throw new ArgumentException($"manifest of checkpoint {group}/{id} is not valid: {e.Message}", nameof(manifest), e);
        }
        string staged = Path.Combine(GroupDir(group), StagingDirName, id);
        if (!Directory.Exists(staged))
        {
            throw new CheckpointNotFoundException(group, id, $"no staging checkpoint {id} in group {group} to commit; it was discarded or never created");
        }

        string checkpoints = Path.Combine(GroupDir(group), CheckpointsDirName);
        string committed = Path.Combine(checkpoints, id);
        if (Directory.Exists(committed))
        {
            throw new InvalidOperationException($"checkpoint {group}/{id} is already committed; a new checkpoint needs a new staging id");
        }

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
            groups = GroupNames();
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
    /// Checks a committed checkpoint end to end: the manifest; that the base checkpoint of every
    /// incremental member exists and holds the vpid it applies to
    /// (<see cref="ManifestMember.BaseImageVpid"/>); for every member the .meta size and CRC-32C
    /// against the manifest, the decoded image, its vpid, seq, kind and base, every page run
    /// (compressed ones decoded) and every file's contents; and the same of every checkpoint an
    /// incremental member applies to, down the chain. Reads all page data, so it costs a full read
    /// of the checkpoint and of its chain, unless <paramref name="reusePageChecks"/>.
    /// </summary>
    /// <param name="reusePageChecks">
    /// skip reading a pages file that an earlier verification by this store read whole and found
    /// good, or that <see cref="TrustWrittenPages"/> counted as such, if its device, inode, size and
    /// change time are the same since (a restore right after a migration target got ready, or of a
    /// checkpoint taken here); <c>hactl images verify</c> reads everything
    /// </param>
    /// <exception cref="CheckpointNotFoundException">No such group or checkpoint.</exception>
    /// <exception cref="ImageFormatException">Something does not match; the message names the file and the reason.</exception>
    public CheckpointManifest Verify(string group, string id, bool reusePageChecks = false) =>
        VerifyChain(group, id, new HashSet<long>(), reusePageChecks);

    /// <param name="verified">checkpoints of the chain verified already (several members may share a base)</param>
    /// <param name="reusePageChecks">skip reading a pages file that an earlier verification read whole, unchanged since</param>
    private CheckpointManifest VerifyChain(string group, string id, HashSet<long> verified, bool reusePageChecks)
    {
        (CheckpointManifest manifest, string dir) = LoadCommitted(group, id);
        var location = ImageLocation.OfCheckpoint(group, id);
        CheckBases(group, manifest, location);
        // An incremental image is only as good as what it applies to: the whole chain is read.
        foreach (long baseSeq in manifest.Members.Where(m => m.IsIncremental).Select(m => m.BaseSeq).Distinct())
        {
            if (!verified.Add(baseSeq))
            {
                continue;
            }
            string baseId = CheckpointId.Format(baseSeq);
            try
            {
                VerifyChain(group, baseId, verified, reusePageChecks);
            }
            catch (ImageFormatException e)
            {
                throw location.Unusable($"its base checkpoint {baseId} does not verify ({ImageLocation.WithoutAdvice(e.Message)})");
            }
        }
        foreach (ManifestMember member in manifest.Members)
        {
            string metaPath = Path.Combine(dir, member.Meta);
            byte[] meta = ImageLocation.OfFile(metaPath).Guard(metaPath, () => File.ReadAllBytes(metaPath));
            if (meta.Length != member.MetaBytes)
            {
                throw location.Corrupt($"{member.Meta} is {meta.Length} bytes but the manifest says {member.MetaBytes}");
            }

            uint crc = Crc32C.Compute(meta);
            if (crc != member.MetaCrc32c)
            {
                throw location.Corrupt($"{member.Meta} checksum 0x{crc:x8} differs from the manifest's 0x{member.MetaCrc32c:x8}");
            }

            ProcessImage image = ProcessImage.ReadMeta(metaPath);
            if (image.Header.Vpid != member.Vpid)
            {
                throw location.Corrupt($"{member.Meta} holds vpid {image.Header.Vpid} but the manifest lists it for vpid {member.Vpid}");
            }

            if (image.Header.CheckpointSeq != (ulong)manifest.Seq)
            {
                throw location.Corrupt($"{member.Meta} belongs to checkpoint seq {image.Header.CheckpointSeq}, not {manifest.Seq}");
            }

            if (ImageNames.Of(image.Header.Kind) != member.Kind || image.Header.BaseSeq != (ulong)member.BaseSeq)
            {
                throw location.Corrupt(
                    $"{member.Meta} is {Describe(image.Header)} but the manifest lists it as {(member.IsIncremental ? $"incremental on checkpoint {member.BaseSeq}" : "full")}");
            }

            string pagesPath = Path.Combine(dir, member.Pages);
            long pagesBytes = ImageLocation.OfFile(pagesPath).Guard(pagesPath, () => new FileInfo(pagesPath).Length);
            if (pagesBytes != member.PagesBytes)
            {
                throw location.Corrupt($"{member.Pages} is {pagesBytes} bytes but the manifest says {member.PagesBytes}");
            }

            VerifyPages(image, pagesPath, member.MetaCrc32c, reusePageChecks);
        }
        return manifest;
    }

    /// <summary>
    /// How old a file's change time must be for a check of it to be reused. The kernel keeps change
    /// times in coarse ticks (a few ms): a file changed again within the tick of its last change
    /// could keep the same time. A file whose time is older than this when stamped gets a later
    /// one from any change after.
    /// </summary>
    public static readonly TimeSpan ReusableAfter = TimeSpan.FromMilliseconds(50);

    // Pages files read whole and found good, by path and the checksum of the meta they were checked against.
    private readonly StampedCache<(string Pages, uint MetaCrc32c), bool> _pagesChecked = new(limit: 4096);

    /// <summary>
    /// Counts the pages files of the checkpoint of <paramref name="manifest"/>, just committed from what this
    /// node's members wrote, as read whole and found good: each member's writer computed every run's
    /// CRC-32C from the memory it wrote into the file, and fdatasynced it. A restore
    /// (<c>reusePageChecks</c>) then does not read them again while their device, inode, size and
    /// change time stay as they are now (docs/architecture.md, "A restore"). Not for copies received
    /// from another node, nor for merged images.
    /// </summary>
    public void TrustWrittenPages(CheckpointManifest manifest)
    {
        string dir = CheckpointDir(manifest.Group, manifest.Id);
        foreach (ManifestMember member in manifest.Members)
        {
            string pagesPath = Path.Combine(dir, member.Pages);
            _pagesChecked.Keep((pagesPath, member.MetaCrc32c), pagesPath, true);
        }
    }

    private void VerifyPages(ProcessImage image, string pagesPath, uint metaCrc32c, bool reuse) =>
        _pagesChecked.GetOrRead((pagesPath, metaCrc32c), pagesPath, () =>
        {
            image.VerifyPages(pagesPath);
            return true;
        }, reuse);

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

    /// <summary>The manifest of a committed checkpoint, checked to describe that checkpoint.</summary>
    /// <exception cref="CheckpointNotFoundException">No such group or checkpoint.</exception>
    /// <exception cref="ImageFormatException">The manifest is corrupt.</exception>
    public CheckpointManifest LoadManifest(string group, string id) => LoadCommitted(group, id).Manifest;

    /// <summary>
    /// Replaces the manifest of a committed checkpoint atomically, as a merge does once the new
    /// member files are on disk: the new manifest is written to manifest.json.tmp and fsynced,
    /// renamed over manifest.json, and the directory fsynced. A crash leaves either manifest,
    /// whole. Files the old manifest named and the new one does not stay until
    /// <see cref="RemoveUnreferencedFiles"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The manifest does not describe this checkpoint, or names a file that is missing.</exception>
    /// <exception cref="CheckpointNotFoundException">There is no such committed checkpoint.</exception>
    public void ReplaceManifest(string group, string id, CheckpointManifest manifest)
    {
        long seq = CheckpointId.Parse(id);
        if (manifest.Group != group || manifest.Id != id || manifest.Seq != seq)
        {
            throw new ArgumentException($"manifest of {manifest.Group}/{manifest.Id} cannot replace the one of checkpoint {group}/{id}", nameof(manifest));
        }

        string dir = CheckpointDir(group, id);
        string path = Path.Combine(dir, CheckpointManifest.FileName);
        if (!File.Exists(path))
        {
            throw new CheckpointNotFoundException(group, id, $"no checkpoint {id} in group {group}; see hactl images list {group}");
        }

        try
        {
            CheckpointManifest.FromJson(manifest.ToJson());
        }
        catch (ImageFormatException e)
        {
            throw new ArgumentException($"manifest of checkpoint {group}/{id} is not valid: {e.Message}", nameof(manifest), e);
        }
        foreach (ManifestMember member in manifest.Members)
        {
            foreach (string file in (string[])[member.Meta, member.Pages])
            {
                if (!File.Exists(Path.Combine(dir, file)))
                {
                    throw new ArgumentException($"the new manifest of checkpoint {group}/{id} names {file}, which does not exist", nameof(manifest));
                }
            }
        }

        // The files the new manifest names must be durable entries before the manifest that
        // names them is; the writer fsynced their contents.
        Libc.FsyncDirectory(dir);
        string temporary = Path.Combine(dir, TemporaryManifestName);
        WriteDurably(temporary, manifest.ToJson());
        File.Move(temporary, path, overwrite: true);
        Libc.FsyncDirectory(dir);
    }

    /// <summary>
    /// Deletes what a crash between the steps of a merge can leave in a committed checkpoint: image
    /// files (<c>N.meta</c>, <c>N.pages</c>, <c>N.merged.meta</c>, <c>N.merged.pages</c>) its
    /// manifest does not name, and an unfinished manifest.json.tmp. Other files are left alone.
    /// Only while no merge of this checkpoint runs: a running merge's new files are not named yet.
    /// </summary>
    /// <returns>The names of the files deleted.</returns>
    public IReadOnlyList<string> RemoveUnreferencedFiles(string group, string id)
    {
        (CheckpointManifest manifest, string dir) = LoadCommitted(group, id);
        var referenced = manifest.Members.SelectMany(m => (string[])[m.Meta, m.Pages]).ToHashSet(StringComparer.Ordinal);
        var removed = new List<string>();
        foreach (string path in Directory.EnumerateFiles(dir))
        {
            string name = Path.GetFileName(path);
            if (referenced.Contains(name) || !(name == TemporaryManifestName || IsImageFileName(name)))
            {
                continue;
            }

            File.Delete(path);
            removed.Add(name);
        }
        if (removed.Count > 0)
        {
            Libc.FsyncDirectory(dir);
        }

        removed.Sort(StringComparer.Ordinal);
        return removed;
    }

    /// <summary>File names of the merged image of <paramref name="vpid"/>: new names, so the files of the image as taken stay valid until the manifest is replaced.</summary>
    public static (string Meta, string Pages) MergedFileNames(int vpid) => ($"{vpid}{MergedSuffix}.meta", $"{vpid}{MergedSuffix}.pages");

    private const string TemporaryManifestName = CheckpointManifest.FileName + ".tmp";
    private const string MergedSuffix = ".merged";

    private static bool IsImageFileName(string name)
    {
        string stem = name.EndsWith(".meta", StringComparison.Ordinal) ? name[..^".meta".Length]
            : name.EndsWith(".pages", StringComparison.Ordinal) ? name[..^".pages".Length]
            : "";
        if (stem.EndsWith(MergedSuffix, StringComparison.Ordinal))
        {
            stem = stem[..^MergedSuffix.Length];
        }

        return stem.Length > 0 && stem.All(char.IsAsciiDigit);
    }

    /// <summary>
    /// <see cref="Verify(string, string, bool)"/>, and whether the checkpoint can be restored on this
    /// node as it is: the files its processes had mapped must be the very files the images were
    /// taken with. A program or library replaced since (an upgrade) would run the image's memory
    /// against other code and die at once. Compared by device and inode, so a file rewritten in
    /// place is not noticed.
    /// </summary>
    /// <exception cref="ImageFormatException">Something does not match, or a mapped file changed.</exception>
    /// <param name="reusePageChecks">as for <see cref="Verify"/></param>
    public CheckpointManifest VerifyForRestore(string group, string id, bool reusePageChecks = false)
    {
        CheckpointManifest manifest = Verify(group, id, reusePageChecks);
        var location = ImageLocation.OfCheckpoint(group, id);
        string dir = CheckpointDir(group, id);
        foreach (ManifestMember member in manifest.Members)
        {
            CheckMappedFiles(ProcessImage.ReadMeta(Path.Combine(dir, member.Meta)), location);
        }
        return manifest;
    }

    private static void CheckMappedFiles(ProcessImage image, ImageLocation location)
    {
        foreach (var vma in image.Vmas.Where(v => v.Kind == VmaKind.File && v.Path.StartsWith('/') && !v.Path.EndsWith(" (deleted)", StringComparison.Ordinal))
                     .DistinctBy(v => v.Path))
        {
            var problem = Libc.Identity(vma.Path) switch
            {
                null => $"{vma.Path}, mapped by process {image.Header.Vpid}, is gone",
                var (dev, inode) when dev != vma.Dev || inode != vma.Inode =>
                    $"{vma.Path}, mapped by process {image.Header.Vpid}, was replaced since the checkpoint (inode {vma.Inode} is now {inode})",
                _ => null,
            };
            if (problem is not null)
            {
                throw new ImageFormatException(
                    $"{location.Subject} cannot be used: {problem}; the program changed since: start the group afresh, or put the old file back");
            }
        }
    }

    /// <summary>
    /// An incremental member is only as good as its base: that checkpoint must exist and hold the
    /// vpid whose image it applies to (its own, or its parent's after a fork).
    /// </summary>
    private void CheckBases(string group, CheckpointManifest manifest, ImageLocation location)
    {
        foreach (var byBase in manifest.Members.Where(m => m.IsIncremental).GroupBy(m => m.BaseSeq))
        {
            string baseId = CheckpointId.Format(byBase.Key);
            string vpids = string.Join(", ", byBase.Select(m => m.Vpid));
            CheckpointManifest baseManifest;
            try
            {
                baseManifest = LoadManifest(group, baseId);
            }
            catch (CheckpointNotFoundException)
            {
                throw location.Unusable($"its incremental image(s) of vpid {vpids} apply to checkpoint {baseId}, which does not exist any more");
            }
            catch (ImageFormatException e)
            {
                throw location.Unusable($"its incremental image(s) of vpid {vpids} apply to checkpoint {baseId}, which cannot be read ({e.Message})");
            }
            foreach (ManifestMember member in byBase)
            {
                if (baseManifest.Members.All(b => b.Vpid != member.BaseImageVpid))
                {
                    throw location.Unusable($"its incremental image of vpid {member.Vpid} applies to {DescribeBase(member, baseId)}, which has no process {member.BaseImageVpid}");
                }
            }
        }
    }

    /// <summary>"checkpoint 000004", or "the image of vpid 2 in checkpoint 000004" for a member forked since.</summary>
    private static string DescribeBase(ManifestMember member, string baseId) => member.BaseImageVpid == member.Vpid
        ? $"checkpoint {baseId}"
        : $"the image of vpid {member.BaseImageVpid} in checkpoint {baseId}";

    private static string Describe(MetaHeader header) => header.Kind == ImageKind.Incremental
        ? $"incremental on checkpoint {header.BaseSeq}"
        : "full";

    private (CheckpointManifest Manifest, string Dir) LoadCommitted(string group, string id)
    {
        string dir = CheckpointDir(group, id);
        string manifestPath = Path.Combine(dir, CheckpointManifest.FileName);
        if (!File.Exists(manifestPath))
        {
            throw new CheckpointNotFoundException(group, id, $"no checkpoint {id} in group {group}; see hactl images list {group}");
        }

        CheckpointManifest manifest = LoadManifestFile(manifestPath);
        if (manifest.Group != group || manifest.Id != id)
        {
            throw ImageLocation.OfCheckpoint(group, id).Corrupt($"its manifest describes checkpoint {manifest.Group}/{manifest.Id}");
        }

        return (manifest, dir);
    }

    private IEnumerable<(string Id, string Dir)> CommittedIds(string group)
    {
        string checkpoints = Path.Combine(GroupDir(group), CheckpointsDirName);
        if (!Directory.Exists(checkpoints))
        {
            return [];
        }

        return Directory.EnumerateDirectories(checkpoints)
            .Where(dir => CheckpointId.TryParse(Path.GetFileName(dir), out _) && File.Exists(Path.Combine(dir, CheckpointManifest.FileName)))
            .Select(dir => (Path.GetFileName(dir), dir));
    }

    /// <exception cref="ImageFormatException">The manifest is missing, unreadable or not valid.</exception>
    private CheckpointManifest LoadManifestFile(string path) => _manifests.GetOrRead(path, path, () => CheckpointManifest.Load(path));

    private CheckpointInfo Describe(string group, string id, string dir)
    {
        long seq = CheckpointId.Parse(id);
        try
        {
            CheckpointManifest m = LoadManifestFile(Path.Combine(dir, CheckpointManifest.FileName));
            if (m.Group == group && m.Id == id)
            {
                return new CheckpointInfo(group, id, seq, m.Kind, m.Bytes, m.CreatedUtc, m.Members.Count, dir, m.BaseSeq, m.Merged is not null);
            }
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
        {
            return;
        }

        if (Path.GetDirectoryName(dir) is { } parent)
        {
            CreateDirectories(parent);
        }

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
        using var file = NoFollowFile.Create(path, ManifestMode);
        File.SetUnixFileMode(file, ManifestMode); // before any byte is written
        RandomAccess.Write(file, System.Text.Encoding.UTF8.GetBytes(text), 0);
        RandomAccess.FlushToDisk(file);
    }
}
