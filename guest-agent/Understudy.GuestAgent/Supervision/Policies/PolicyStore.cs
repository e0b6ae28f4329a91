using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>A policy kept on disk, as it was applied.</summary>
internal sealed record StoredPolicy(ParsedPolicy Parsed, DateTime AppliedUtc);

/// <summary>
/// Keeps each applied policy as STATE/policies/GROUP.yaml, exactly as its file was, so that the
/// agent finds its groups again when it starts (autostart).
/// </summary>
internal sealed class PolicyStore
{
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly StatePaths _paths;
    private readonly ILogger<PolicyStore> _logger;

    public PolicyStore(StatePaths paths, ILogger<PolicyStore> logger)
    {
        _paths = paths;
        _logger = logger;
    }

    private string PathOf(string group) => Path.Combine(_paths.PoliciesDir, group + ".yaml");

    /// <summary>Writes the policy durably (temporary file, fsync, rename).</summary>
    public void Save(ParsedPolicy parsed)
    {
        Directory.CreateDirectory(_paths.PoliciesDir, UnixSocketFile.PrivateDirectory);
        var path = PathOf(parsed.Policy.Group);
        var temporary = path + ".new";
        using (var file = File.OpenHandle(temporary, System.IO.FileMode.Create, FileAccess.Write))
        {
            File.SetUnixFileMode(file, FileMode);
            RandomAccess.Write(file, System.Text.Encoding.UTF8.GetBytes(parsed.Text), 0);
            RandomAccess.FlushToDisk(file);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Removes the group's stored policy: the agent will not find it again when it starts.</summary>
    public void Delete(string group) => File.Delete(PathOf(group));

    /// <summary>Every stored policy that still parses; the others are logged and skipped.</summary>
    public IReadOnlyList<StoredPolicy> LoadAll()
    {
        if (!Directory.Exists(_paths.PoliciesDir))
        {
            return [];
        }
        var policies = new List<StoredPolicy>();
        foreach (var path in Directory.EnumerateFiles(_paths.PoliciesDir, "*.yaml").Order(StringComparer.Ordinal))
        {
            try
            {
                var parsed = PolicyParser.Parse(File.ReadAllText(path), path);
                if (parsed.Policy.Group + ".yaml" != Path.GetFileName(path))
                {
                    _logger.LogError("Stored policy {Path} is for group {Group}, not for its file name; skipped", path, parsed.Policy.Group);
                    continue;
                }
                policies.Add(new StoredPolicy(parsed, File.GetLastWriteTimeUtc(path)));
            }
            catch (Exception e) when (e is PolicyException or IOException or UnauthorizedAccessException)
            {
                _logger.LogError("Stored policy {Path} cannot be used and is skipped: {Error}; apply a corrected one with hactl group apply", path, e.Message);
            }
        }
        return policies;
    }
}
