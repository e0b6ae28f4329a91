namespace Understudy.Images;

/// <summary>
/// Names a file or a checkpoint the way an operator sees it ("image 2.meta of checkpoint
/// web/000003") and says what to do when it is bad, so every error is one complete line.
/// </summary>
internal sealed record ImageLocation(string Subject, string Advice)
{
    public const string GenericAdvice = "use another image or take a new checkpoint";

    public static ImageLocation OfCheckpoint(string group, string id) =>
        new($"checkpoint {group}/{id}", AdviceFor(group));

    /// <summary>
    /// Recognises STATE/groups/&lt;group&gt;/{checkpoints,staging}/&lt;id&gt;/&lt;file&gt;; any other path is
    /// named in full. <paramref name="what"/> prefixes the name ("image 2.meta"), or nothing when null.
    /// </summary>
    public static ImageLocation OfFile(string path, string? what = "image")
    {
        string prefix = what is null ? "" : what + " ";
        string full = Path.GetFullPath(path);
        string? idDir = Path.GetDirectoryName(full);
        string? areaDir = idDir is null ? null : Path.GetDirectoryName(idDir);
        string? groupDir = areaDir is null ? null : Path.GetDirectoryName(areaDir);
        string area = Path.GetFileName(areaDir) ?? "";
        if (idDir is not null && groupDir is not null && (area == "checkpoints" || area == "staging")
            && CheckpointId.TryParse(Path.GetFileName(idDir), out _)
            && Path.GetFileName(Path.GetDirectoryName(groupDir)) == "groups")
        {
            string group = Path.GetFileName(groupDir);
            string checkpoint = area == "staging" ? "staging checkpoint" : "checkpoint";
            return new($"{prefix}{Path.GetFileName(full)} of {checkpoint} {group}/{Path.GetFileName(idDir)}", AdviceFor(group));
        }
        return new($"{prefix}{full}", GenericAdvice);
    }

    public ImageFormatException Corrupt(string reason, Exception? inner = null) =>
        new($"{Subject} is corrupt: {reason}; {Advice}", inner);

    /// <summary>The checkpoint is sound in itself but something it depends on is not there.</summary>
    public ImageFormatException Unusable(string reason) =>
        new($"{Subject} cannot be used: {reason}; {Advice}");

    /// <summary>The image is sound in itself but does not fit the other image of a merge.</summary>
    public ImageFormatException Unmergeable(string reason) =>
        new($"{Subject} cannot be merged: {reason}; {Advice}");

    public ImageFormatException From(ImageDefect defect) => defect.Unsupported
        ? new($"{Subject} cannot be read: {defect.Message}; {defect.Advice ?? Advice}", defect)
        : new($"{Subject} is corrupt: {defect.Message}; {defect.Advice ?? Advice}", defect);

    /// <summary>An error line of this kind without its "; what to do" part, to be quoted inside another.</summary>
    public static string WithoutAdvice(string message) =>
        message.LastIndexOf("; ", StringComparison.Ordinal) is var i and > 0 ? message[..i] : message;

    public ImageFormatException Missing(string path) =>
        new($"{Subject} is missing: {path} does not exist; {Advice}");

    public ImageFormatException Unreadable(Exception io) =>
        new($"{Subject} cannot be read: {OneLine(io.Message)}; check the file's permissions and the disk, or {Advice}", io);

    /// <summary>Runs an I/O action, turning missing files and I/O failures into one-line image errors.</summary>
    public T Guard<T>(string path, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (ImageDefect defect)
        {
            throw From(defect);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw Missing(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unreadable(e);
        }
    }

    public static string OneLine(string text) => string.Join(' ', text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));

    private static string AdviceFor(string group) => $"restore an older checkpoint (hactl images list {group})";
}
