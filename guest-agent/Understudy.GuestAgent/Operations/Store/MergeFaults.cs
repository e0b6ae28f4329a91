using System.Globalization;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// Fault injection for tests, from the agent's environment: UNDERSTUDY_AGENT_FAULT=slow-merge
/// (or slow-merge:SECONDS) holds every merge between writing its merged files and replacing the
/// checkpoint's manifest, so that a test can kill the agent exactly there. Unset in production.
/// </summary>
internal sealed class MergeFaults
{
    public const string Variable = "UNDERSTUDY_AGENT_FAULT";
    private const string SlowMerge = "slow-merge";

    public MergeFaults()
        : this(Environment.GetEnvironmentVariable(Variable))
    {
    }

    public MergeFaults(string? setting)
    {
        foreach (var fault in (setting ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (fault == SlowMerge)
            {
                HoldBeforeManifest = TimeSpan.FromSeconds(30);
            }
            else if (fault.StartsWith(SlowMerge + ":", StringComparison.Ordinal)
                     && double.TryParse(fault[(SlowMerge.Length + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                HoldBeforeManifest = TimeSpan.FromSeconds(seconds);
            }
        }
    }

    /// <summary>How long a merge waits with its merged files written and the old manifest still in place; zero normally.</summary>
    public TimeSpan HoldBeforeManifest { get; }
}
