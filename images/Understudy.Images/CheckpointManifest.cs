using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Understudy.Images;

/// <summary>
/// manifest.json of a checkpoint (docs/protocol.md). A checkpoint exists once its manifest is
/// committed; <see cref="CheckpointStore.Commit"/> writes it.
/// </summary>
/// <param name="Kind">"incremental" if any member's image is incremental, otherwise "full".</param>
/// <param name="Bytes">Bytes the checkpoint holds: the sum of its members' .meta and .pages.</param>
/// <param name="Merged">
/// Set once the checkpoint's incremental images were merged into full ones (its kind is then
/// "full"); null for a checkpoint as it was taken. Absent in JSON when null.
/// </param>
/// <param name="OutputLog">
/// The group's output log on the node that took the checkpoint (the file its processes' stdout and
/// stderr name), which a restore on another node replaces with its own; null when not recorded
/// (manifests written before it was), and then a restore keeps the paths the images name. Absent
/// in JSON when null.
/// </param>
public sealed record CheckpointManifest(
    string Format,
    int Version,
    string Group,
    string Id,
    long Seq,
    string Kind,
    DateTime CreatedUtc,
    long Bytes,
    IReadOnlyList<ManifestMember> Members,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] MergeRecord? Merged = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OutputLog = null)
{
    public const string FormatName = "understudy-checkpoint";
    public const int CurrentVersion = 1;
    public const string FileName = "manifest.json";
    public const string FullKind = "full";
    public const string IncrementalKind = "incremental";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        // A manifest with a field missing or null is refused, not filled with defaults.
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        AllowDuplicateProperties = false,
    };

    /// <summary>A manifest of the current format; Id and Bytes follow from <paramref name="seq"/> and the members.</summary>
    public static CheckpointManifest Create(string group, long seq, string kind, DateTime createdUtc, IReadOnlyList<ManifestMember> members) =>
        new(FormatName, CurrentVersion, group, CheckpointId.Format(seq), seq, kind, createdUtc.ToUniversalTime(),
            members.Sum(m => m.MetaBytes + m.PagesBytes), members);

    /// <summary>A manifest whose kind follows from its members': incremental if any of them is.</summary>
    public static CheckpointManifest Create(string group, long seq, DateTime createdUtc, IReadOnlyList<ManifestMember> members) =>
        Create(group, seq, KindOf(members), createdUtc, members);

    /// <summary>"incremental" if any member is, otherwise "full".</summary>
    public static string KindOf(IEnumerable<ManifestMember> members) =>
        members.Any(m => m.IsIncremental) ? IncrementalKind : FullKind;

    /// <summary>Whether a restore needs a merge first: some member is still incremental.</summary>
    [JsonIgnore]
    public bool HasIncrementalMembers => Members.Any(m => m.IsIncremental);

    /// <summary>
    /// The checkpoint the incremental members apply to (they share the base the coordinator
    /// asked for), or for a merged checkpoint the base it was merged onto; 0 when there is none.
    /// </summary>
    [JsonIgnore]
    public long BaseSeq => Merged?.BaseSeq ?? Members.Select(m => m.BaseSeq).DefaultIfEmpty(0).Max();

    /// <summary>
    /// The same checkpoint with <paramref name="replaced"/> members instead of the ones of the same
    /// vpid, as full images: kind "full", Bytes recomputed, and <see cref="Merged"/> recording
    /// what the checkpoint was as taken.
    /// </summary>
    public CheckpointManifest AsMerged(IReadOnlyList<ManifestMember> replaced, DateTime mergedUtc)
    {
        var byVpid = replaced.ToDictionary(m => m.Vpid);
        var members = Members.Select(m => byVpid.GetValueOrDefault(m.Vpid) ?? m).ToList();
        return this with
        {
            Kind = KindOf(members),
            Bytes = members.Sum(m => m.MetaBytes + m.PagesBytes),
            Members = members,
            Merged = Merged ?? new MergeRecord(BaseSeq, Bytes, mergedUtc.ToUniversalTime()),
        };
    }

    /// <summary>Reads and validates a manifest file.</summary>
    /// <exception cref="ImageFormatException">Missing, unreadable, not JSON, truncated, or not a valid version 1 manifest.</exception>
    public static CheckpointManifest Load(string path)
    {
        ImageLocation location = ImageLocation.OfFile(path, what: null);
        return location.Guard(path, () => Parse(File.ReadAllBytes(path)));
    }

    /// <summary>Parses and validates manifest JSON held in memory.</summary>
    /// <exception cref="ImageFormatException">Not JSON, truncated, or not a valid version 1 manifest.</exception>
    public static CheckpointManifest FromJson(string json)
    {
        try
        {
            return Parse(Encoding.UTF8.GetBytes(json));
        }
        catch (ImageDefect defect)
        {
            throw new ImageLocation("manifest", ImageLocation.GenericAdvice).From(defect);
        }
    }

    /// <summary>Indented camelCase JSON, the layout of docs/protocol.md.</summary>
    public string ToJson() => JsonSerializer.Serialize(
        this with { CreatedUtc = AsUtc(CreatedUtc), Merged = Merged is null ? null : Merged with { MergedUtc = AsUtc(Merged.MergedUtc) } }, Json);

    private static CheckpointManifest Parse(ReadOnlySpan<byte> utf8)
    {
        CheckpointManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<CheckpointManifest>(utf8, Json);
        }
        catch (JsonException e)
        {
            throw new ImageDefect(DescribeJsonError(e));
        }
        if (manifest is null)
        {
            throw new ImageDefect("the JSON is null, not a manifest");
        }

        if (Problem(manifest) is { } problem)
        {
            throw new ImageDefect(problem, unsupported: manifest.Format == FormatName && manifest.Version != CurrentVersion);
        }

        return manifest with
        {
            CreatedUtc = AsUtc(manifest.CreatedUtc),
            Merged = manifest.Merged is null ? null : manifest.Merged with { MergedUtc = AsUtc(manifest.Merged.MergedUtc) },
        };
    }

    private static string? Problem(CheckpointManifest m)
    {
        if (m.Format != FormatName)
        {
            return $"format is \"{ImageLocation.OneLine(m.Format)}\", expected \"{FormatName}\"";
        }

        if (m.Version != CurrentVersion)
        {
            return $"manifest version {m.Version} is not supported (this build reads version {CurrentVersion})";
        }

        if (GroupName.Problem(m.Group) is { } groupProblem)
        {
            return groupProblem;
        }

        if (!CheckpointId.TryParse(m.Id, out long idSeq) || idSeq != m.Seq)
        {
            return $"id \"{ImageLocation.OneLine(m.Id)}\" is not seq {m.Seq} zero-padded to six digits";
        }

        if (m.Kind is not (FullKind or IncrementalKind))
        {
            return $"kind is \"{ImageLocation.OneLine(m.Kind)}\", expected \"{FullKind}\" or \"{IncrementalKind}\"";
        }

        if (m.OutputLog is { } outputLog && (!outputLog.StartsWith('/') || outputLog.Contains('\0')))
        {
            return $"outputLog \"{ImageLocation.OneLine(outputLog)}\" is not an absolute path";
        }

        if (m.Bytes < 0)
        {
            return $"bytes is negative ({m.Bytes})";
        }

        if (m.Members.Count == 0)
        {
            return "it lists no members";
        }

        var vpids = new HashSet<int>();
        for (int i = 0; i < m.Members.Count; i++)
        {
            if (m.Members[i] is not { } member)
            {
                return $"member {i} is null";
            }

            string which = $"member {i} (vpid {member.Vpid})";
            if (member.Vpid <= 0 || member.Vppid < 0 || member.ExecCount < 0)
            {
                return $"{which} has a negative or zero pid, or a negative exec count";
            }

            if (!vpids.Add(member.Vpid))
            {
                return $"{which} repeats vpid {member.Vpid}";
            }

            if (!IsPlainFileName(member.Meta) || !IsPlainFileName(member.Pages))
            {
                return $"{which} names files outside the checkpoint directory (\"{ImageLocation.OneLine(member.Meta)}\", \"{ImageLocation.OneLine(member.Pages)}\")";
            }

            if (member.MetaBytes < ImageLayout.HeaderSize || member.PagesBytes < 0)
            {
                return $"{which} has impossible sizes (metaBytes {member.MetaBytes}, pagesBytes {member.PagesBytes})";
            }

            if (member.Kind is not (FullKind or IncrementalKind))
            {
                return $"{which} has kind \"{ImageLocation.OneLine(member.Kind)}\", expected \"{FullKind}\" or \"{IncrementalKind}\"";
            }

            if (member.Kind == FullKind && member.BaseSeq != 0)
            {
                return $"{which} is full but has baseSeq {member.BaseSeq}, expected 0";
            }

            if (member.Kind == IncrementalKind && (member.BaseSeq <= 0 || member.BaseSeq >= m.Seq))
            {
                return $"{which} is incremental on baseSeq {member.BaseSeq}; it must name an earlier checkpoint";
            }

            if (member.BaseVpid is { } baseVpid)
            {
                // Only an increment applies to an image; a full image stands alone.
                if (member.Kind != IncrementalKind)
                {
                    return $"{which} is full but has baseVpid {baseVpid}; only an incremental member names a base image";
                }

                if (baseVpid <= 0)
                {
                    return $"{which} has baseVpid {baseVpid}, expected a pid of 1 or more";
                }
            }
        }
        if (m.Kind != KindOf(m.Members))
        {
            return $"kind is \"{m.Kind}\" but {(m.Kind == FullKind ? "a member is incremental" : "no member is incremental")}";
        }

        if (m.Merged is { } merged)
        {
            if (m.Kind != FullKind)
            {
                return "it is marked merged but still has incremental members";
            }

            if (merged.BaseSeq <= 0 || merged.BaseSeq >= m.Seq || merged.Bytes < 0)
            {
                return $"merged names base {merged.BaseSeq} and {merged.Bytes} bytes; the base must be an earlier checkpoint";
            }
        }
        return null;
    }

    // Member files live in the checkpoint directory itself: a name with a slash, "." or ".."
    // would let a manifest point the restorer anywhere.
    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name is not ("." or "..") && name.IndexOfAny(['/', '\0']) < 0;

    private static string DescribeJsonError(JsonException e)
    {
        // System.Text.Json adds advice for programmers and " Path: $.x | LineNumber: 0 | ...";
        // keep its first sentence and say where in our own words.
        string message = ImageLocation.OneLine(e.Message);
        int sentenceEnd = message.IndexOf(". ", StringComparison.Ordinal);
        if (sentenceEnd >= 0)
        {
            message = message[..sentenceEnd];
        }

        string where = e.LineNumber is { } line
            ? $" at line {line + 1}, byte {e.BytePositionInLine + 1}{(string.IsNullOrEmpty(e.Path) ? "" : $" ({e.Path})")}"
            : "";
        return $"invalid JSON{where}: {message.TrimEnd('.')}";
    }

    private static DateTime AsUtc(DateTime t) => t.Kind switch
    {
        DateTimeKind.Utc => t,
        DateTimeKind.Local => t.ToUniversalTime(),
        _ => DateTime.SpecifyKind(t, DateTimeKind.Utc),
    };
}

/// <summary>
/// What a merged checkpoint was as taken: the base its incremental images applied to and the
/// bytes they held. The policy that decides when the next checkpoint must be full counts a merged
/// checkpoint as the incremental one it was.
/// </summary>
/// <param name="Bytes">The checkpoint's bytes before the merge.</param>
public sealed record MergeRecord(long BaseSeq, long Bytes, DateTime MergedUtc);
