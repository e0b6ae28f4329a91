using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>A migration of <see cref="Group"/> whose takeover was sent to <see cref="Target"/> and whose end was not carried out here yet.</summary>
internal sealed record MigrationRecord(string Group, string Target, string CheckpointId);

/// <summary>
/// The source's unsettled migrations on disk (docs/architecture.md, "Moving a live group"):
/// <c>STATE/migrations/GROUP</c>, 0600, written durably before the takeover is sent and removed once
/// the group ended here or runs on here, so that an agent that restarts in between knows the group's
/// processes are held frozen for a migration whose outcome it must still learn from the target.
/// </summary>
internal sealed class MigrationJournal
{
    private const string Header = "understudy-migration 1";
    private readonly string _dir;
    private readonly ILogger<MigrationJournal> _logger;

    public MigrationJournal(IOptions<AgentOptions> options, ILogger<MigrationJournal> logger)
    {
        _dir = Path.Combine(options.Value.StateDir, "migrations");
        _logger = logger;
    }

    /// <summary>Records the migration, durably, before its takeover is sent.</summary>
    /// <exception cref="IOException">it could not be written: the takeover must not be sent</exception>
    public void Record(MigrationRecord record) =>
        PrivateFile.WriteDurably(PathOf(record.Group), $"{Header}\ntarget {record.Target}\ncheckpoint {record.CheckpointId}\n");

    /// <summary>The migration of the group ended here (the group ended, or runs on): nothing is left to settle.</summary>
    public void Remove(string group)
    {
        try
        {
            File.Delete(PathOf(group));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError("Migration of group {Group} settled, but its record {Path} could not be removed ({Error}): remove it by hand, " +
                "or the next agent start asks its target again", group, PathOf(group), e.Message);
        }
    }

    /// <summary>Whether the group has a migration on record (settled or not yet taken up), readable or not.</summary>
    public bool Holds(string group) => File.Exists(PathOf(group));

    /// <summary>Every recorded migration; a record that cannot be read is logged (one line: which file, why, what to do) and left alone.</summary>
    public IReadOnlyList<MigrationRecord> ReadAll()
    {
        if (!Directory.Exists(_dir))
        {
            return [];
        }
        var records = new List<MigrationRecord>();
        foreach (var path in Directory.EnumerateFiles(_dir).Order(StringComparer.Ordinal))
        {
            var group = Path.GetFileName(path);
            if (!GroupNames.IsValid(group))
            {
                continue; // a temporary file of a write a crash cut short, or not ours
            }
            if (Parse(group, path) is { } record)
            {
                records.Add(record);
            }
        }
        return records;
    }

    private MigrationRecord? Parse(string group, string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError("Cannot read the unsettled migration of group {Group} in {Path}: {Error}; its processes stay frozen here", group, path, e.Message);
            return null;
        }
        string? Value(string key) => lines.Select(l => l.Split(' ', 2)).FirstOrDefault(p => p.Length == 2 && p[0] == key)?[1].Trim();
        if (lines.FirstOrDefault() != Header || Value("target") is not { Length: > 0 } target || Value("checkpoint") is not { Length: > 0 } id)
        {
            _logger.LogError(
                "The unsettled migration of group {Group} in {Path} is not a migration record ('{Header}', 'target NODE', 'checkpoint ID'); " +
                "its processes stay frozen here: if the target runs the group, stop it here ('hactl stop {Group}'); otherwise write the record again and restart the agent",
                group, path, Header, group);
            return null;
        }
        return new MigrationRecord(group, target, id);
    }

    private string PathOf(string group) => Path.Combine(_dir, group);
}
