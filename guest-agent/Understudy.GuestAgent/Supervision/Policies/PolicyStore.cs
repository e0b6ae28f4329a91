using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// A policy kept on disk, as it was applied. <see cref="RunsOn"/> is set for the standby's copy of
/// a group that moved to another node (hactl migrate): that node runs and supervises the group, this
/// one keeps the policy for when the group comes back, and starts nothing by it ("" when the node's
/// name was not recorded).
/// </summary>
internal sealed record StoredPolicy(ParsedPolicy Parsed, DateTime AppliedUtc, string? RunsOn = null)
{
    public bool IsStandbyCopy => RunsOn is not null;
}

/// <summary>
/// Keeps each applied policy as STATE/policies/GROUP.yaml, exactly as its file was, so that the
/// agent finds its groups again when it starts (autostart). A group that migrated to another node
/// leaves its policy here as GROUP.standby (the same text, renamed: nothing starts the group by it)
/// and the node it runs on in GROUP.runs-on; the standby's copy wins over a GROUP.yaml beside it, so
/// that a crash halfway through either change never lets the group start on both nodes. Files are
/// the agent's alone (0600) and written durably (temporary file, fsync, rename).
/// </summary>
internal sealed class PolicyStore
{
    private const string Active = ".yaml", Standby = ".standby", RunsOnFile = ".runs-on";
    private readonly StatePaths _paths;
    private readonly ILogger<PolicyStore> _logger;

    public PolicyStore(StatePaths paths, ILogger<PolicyStore> logger)
    {
        _paths = paths;
        _logger = logger;
    }

    private string PathOf(string group, string kind = Active) => Path.Combine(_paths.PoliciesDir, group + kind);

    /// <summary>Writes the policy in force durably; a standby's copy of the group's policy here goes.</summary>
    public void Save(ParsedPolicy parsed)
    {
        var group = parsed.Policy.Group;
        Write(PathOf(group), parsed.Text);
        File.Delete(PathOf(group, Standby));
        File.Delete(PathOf(group, RunsOnFile));
    }

    /// <summary>
    /// The group moved to <paramref name="runsOn"/>: its policy here becomes the standby's copy, in
    /// one rename, so that the agent never starts the group by it again.
    /// </summary>
    public void KeepAsStandbyCopy(string group, string runsOn)
    {
        Write(PathOf(group, RunsOnFile), runsOn + "\n");
        File.Move(PathOf(group), PathOf(group, Standby), overwrite: true);
    }

    /// <summary>Removes the group's stored policy, in force or the standby's copy: the agent will not find it again when it starts.</summary>
    public void Delete(string group)
    {
        File.Delete(PathOf(group));
        File.Delete(PathOf(group, Standby));
        File.Delete(PathOf(group, RunsOnFile));
    }

    /// <summary>Every stored policy that still parses, each group once (its standby copy if it has one); the others are logged and skipped.</summary>
    public IReadOnlyList<StoredPolicy> LoadAll()
    {
        if (!Directory.Exists(_paths.PoliciesDir))
        {
            return [];
        }
        var policies = new Dictionary<string, StoredPolicy>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(_paths.PoliciesDir, "*" + Active).Order(StringComparer.Ordinal))
        {
            if (Load(path, Active, runsOn: null) is { } stored)
            {
                policies[stored.Parsed.Policy.Group] = stored;
            }
        }
        foreach (var path in Directory.EnumerateFiles(_paths.PoliciesDir, "*" + Standby).Order(StringComparer.Ordinal))
        {
            if (Load(path, Standby, RunsOn(path)) is { } stored)
            {
                policies[stored.Parsed.Policy.Group] = stored;
            }
        }
        return policies.Values.OrderBy(p => p.Parsed.Policy.Group, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The node a standby's copy says the group runs on; "" when that is unknown (the file is
    /// missing or unreadable): the copy is still a standby's, which starts nothing.
    /// </summary>
    private string RunsOn(string standbyPath)
    {
        var runsOnPath = Path.ChangeExtension(standbyPath, RunsOnFile);
        try
        {
            return File.Exists(runsOnPath) ? File.ReadAllText(runsOnPath).Trim() : "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogError("Cannot read {Path}: {Error}; the policy beside it stays the standby's copy", runsOnPath, e.Message);
            return "";
        }
    }

    private StoredPolicy? Load(string path, string kind, string? runsOn)
    {
        try
        {
            var parsed = PolicyParser.Parse(File.ReadAllText(path), path);
            if (parsed.Policy.Group + kind != Path.GetFileName(path))
            {
                _logger.LogError("Stored policy {Path} is for group {Group}, not for its file name; skipped", path, parsed.Policy.Group);
                return null;
            }
            return new StoredPolicy(parsed, File.GetLastWriteTimeUtc(path), runsOn);
        }
        catch (Exception e) when (e is PolicyException or IOException or UnauthorizedAccessException)
        {
            _logger.LogError("Stored policy {Path} cannot be used and is skipped: {Error}; apply a corrected one with hactl group apply", path, e.Message);
            return null;
        }
    }

    private static void Write(string path, string text) => PrivateFile.WriteDurably(path, text);
}
