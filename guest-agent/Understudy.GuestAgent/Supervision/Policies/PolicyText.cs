namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>How policy settings read in events, diffs and hactl: short, in the policy's own terms.</summary>
internal static class PolicyText
{
    public static string Describe(ReadinessCheck? ready) => ready switch
    {
        null => "registered",
        { Probe: DelayProbeSpec delay } => delay.Describe(),
        _ => $"{ready.Probe.Describe()} within {DurationFormat.Format(ready.Timeout)} (polled every {DurationFormat.Format(ready.Interval)})",
    };

    public static string Describe(HealthCheck check) =>
        $"{check.Probe.Describe()} every {DurationFormat.Format(check.Interval)}, timeout {DurationFormat.Format(check.Timeout)}, " +
        $"failed after {check.FailureThreshold} in a row";

    public static string Describe(IReadOnlyList<HealthCheck> checks) =>
        checks.Count == 0 ? "none" : string.Join("; ", checks.Select(Describe));

    public static string Interval(TimeSpan? interval) => interval is { } value ? DurationFormat.Format(value) : "off";

    public static string Describe(CheckpointSchedule schedule) =>
        schedule.Interval is null
            ? $"off (keep {schedule.Retention})"
            : $"every {Interval(schedule.Interval)}, full every {schedule.FullEvery}, keep {schedule.Retention}";

    public static string Describe(RecoveryPolicy recovery) =>
        $"{recovery.Action.ToToken()}, at most {recovery.MaxAttempts} attempts within {DurationFormat.Format(recovery.Window)}";
}
