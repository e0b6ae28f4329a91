namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// A validated group policy (docs/policy.md): the applications of a group and how the agent
/// keeps the group available. <see cref="Apps"/> is in launch order. <see cref="Standby"/>: the
/// peer node every checkpoint is streamed to, or null.
/// </summary>
internal sealed record GroupPolicy(
    string Group,
    bool Autostart,
    string? ImagesPath,
    CheckpointSchedule Checkpoints,
    RecoveryPolicy Recovery,
    IReadOnlyList<AppPolicy> Apps,
    string? Standby = null)
{
    public AppPolicy? FindApp(string name) => Apps.FirstOrDefault(a => a.Name == name);
}

/// <summary>One application of the group and the conditions around its launch.</summary>
/// <param name="Command">absolute path, or a program name looked up in the agent's PATH at launch</param>
/// <param name="After">applications that must be ready before this one is launched</param>
/// <param name="Ready">when the application counts as ready; null: as soon as it registered</param>
internal sealed record AppPolicy(
    string Name,
    string Command,
    IReadOnlyList<string> Args,
    IReadOnlyDictionary<string, string> Env,
    string Cwd,
    string? User,
    IReadOnlyList<string> After,
    ReadinessCheck? Ready,
    IReadOnlyList<HealthCheck> Health)
{
    public IReadOnlyList<string> Argv => [Command, .. Args];
}

/// <summary>Polled every <paramref name="Interval"/> until it passes, at most <paramref name="Timeout"/>.</summary>
internal sealed record ReadinessCheck(ProbeSpec Probe, TimeSpan Timeout, TimeSpan Interval);

/// <summary>
/// Run every <paramref name="Interval"/>; each run may take <paramref name="Timeout"/>. After
/// <paramref name="FailureThreshold"/> failures in a row the application counts as hung.
/// </summary>
internal sealed record HealthCheck(ProbeSpec Probe, TimeSpan Interval, TimeSpan Timeout, int FailureThreshold);

/// <param name="Interval">null: no periodic checkpoints</param>
/// <param name="FullEvery">every Nth scheduled checkpoint is full (1: all of them)</param>
/// <param name="Retention">how many committed checkpoints to keep</param>
/// <param name="Compression">"none" or "lz4": how the processes store page data (UNDERSTUDY_COMPRESS)</param>
internal sealed record CheckpointSchedule(TimeSpan? Interval, int FullEvery, int Retention, string Compression = "none");

internal enum RecoveryAction
{
    /// <summary>Restore the whole group from its newest checkpoint (restart it fresh if it has none).</summary>
    Restore,
    /// <summary>Stop the whole group and launch it again from scratch.</summary>
    Restart,
    /// <summary>Stop the group and mark it failed.</summary>
    Stop,
}

/// <summary>More than <paramref name="MaxAttempts"/> recoveries within <paramref name="Window"/> mark the group failed.</summary>
internal sealed record RecoveryPolicy(RecoveryAction Action, int MaxAttempts, TimeSpan Window);

internal static class RecoveryActions
{
    public static string ToToken(this RecoveryAction action) => action.ToString().ToLowerInvariant();

    public static bool TryParse(string token, out RecoveryAction action)
    {
        switch (token)
        {
            case "restore": action = RecoveryAction.Restore; return true;
            case "restart": action = RecoveryAction.Restart; return true;
            case "stop": action = RecoveryAction.Stop; return true;
            default: action = default; return false;
        }
    }
}
