using System.Text;
using System.Text.Json;

namespace Understudy.Images;

/// <summary>
/// manifest.json of a checkpoint (docs/protocol.md). A checkpoint exists once its manifest is
/// committed; <see cref="CheckpointStore.Commit"/> writes it.
/// </summary>
/// <param name="Kind">"full" or "incremental".</param>
/// <param name="Bytes">Bytes the checkpoint wrote: the sum of its members' .meta and .pages.</param>
public sealed record CheckpointManifest(
    string Format,
    int Version,
    string Group,
    string Id,
    long Seq,
    string Kind,
    DateTime CreatedUtc,
    long Bytes,
    IReadOnlyList<ManifestMember> Members)
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
    public string ToJson() => JsonSerializer.Serialize(this with { CreatedUtc = AsUtc(CreatedUtc) }, Json);

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
            throw new ImageDefect("the JSON is null, not a manifest");
        if (Problem(manifest) is { } problem)
            throw new ImageDefect(problem, unsupported: manifest.Format == FormatName && manifest.Version != CurrentVersion);
        return manifest with { CreatedUtc = AsUtc(manifest.CreatedUtc) };
    }

    private static string? Problem(CheckpointManifest m)
    {
        if (m.Format != FormatName)
            return $"format is \"{ImageLocation.OneLine(m.Format)}\", expected \"{FormatName}\"";
        if (m.Version != CurrentVersion)
            return $"manifest version {m.Version} is not supported (this build reads version {CurrentVersion})";
        if (GroupName.Problem(m.Group) is { } groupProblem)
            return groupProblem;
        if (!CheckpointId.TryParse(m.Id, out long idSeq) || idSeq != m.Seq)
            return $"id \"{ImageLocation.OneLine(m.Id)}\" is not seq {m.Seq} zero-padded to six digits";
        if (m.Kind is not (FullKind or IncrementalKind))
            return $"kind is \"{ImageLocation.OneLine(m.Kind)}\", expected \"{FullKind}\" or \"{IncrementalKind}\"";
        if (m.Bytes < 0)
            return $"bytes is negative ({m.Bytes})";
        if (m.Members.Count == 0)
            return "it lists no members";

        var vpids = new HashSet<int>();
        for (int i = 0; i < m.Members.Count; i++)
        {
            if (m.Members[i] is not { } member)
                return $"member {i} is null";
            string which = $"member {i} (vpid {member.Vpid})";
            if (member.Vpid <= 0 || member.Vppid < 0 || member.ExecCount < 0)
                return $"{which} has a negative or zero pid, or a negative exec count";
            if (!vpids.Add(member.Vpid))
                return $"{which} repeats vpid {member.Vpid}";
            if (!IsPlainFileName(member.Meta) || !IsPlainFileName(member.Pages))
                return $"{which} names files outside the checkpoint directory (\"{ImageLocation.OneLine(member.Meta)}\", \"{ImageLocation.OneLine(member.Pages)}\")";
            if (member.MetaBytes < ImageLayout.HeaderSize || member.PagesBytes < 0)
                return $"{which} has impossible sizes (metaBytes {member.MetaBytes}, pagesBytes {member.PagesBytes})";
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
            message = message[..sentenceEnd];
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
