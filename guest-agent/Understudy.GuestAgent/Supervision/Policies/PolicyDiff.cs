namespace Understudy.GuestAgent.Supervision.Policies;

/// <param name="Live">takes effect on the running group at once; otherwise at its next start</param>
internal sealed record PolicyChange(string Text, bool Live);

/// <summary>What changed between two policies of a group, setting by setting.</summary>
internal static class PolicyDiff
{
    public static IReadOnlyList<PolicyChange> Compare(GroupPolicy before, GroupPolicy after)
    {
        var changes = new List<PolicyChange>();
        void Add(string key, string old, string now, bool live)
        {
            if (old != now)
            {
                changes.Add(new PolicyChange($"{key}: {old} -> {now}", live));
            }
        }

        Add("autostart", Bool(before.Autostart), Bool(after.Autostart), live: true);
        Add("images.path", before.ImagesPath ?? "default", after.ImagesPath ?? "default", live: true);
        Add("standby", before.Standby ?? "none", after.Standby ?? "none", live: true);
        Add("checkpoints.interval", PolicyText.Interval(before.Checkpoints.Interval), PolicyText.Interval(after.Checkpoints.Interval), live: true);
        Add("checkpoints.fullEvery", Number(before.Checkpoints.FullEvery), Number(after.Checkpoints.FullEvery), live: true);
        Add("checkpoints.retention", Number(before.Checkpoints.Retention), Number(after.Checkpoints.Retention), live: true);
        // the processes read it from their environment when they start
        Add("checkpoints.compression", before.Checkpoints.Compression, after.Checkpoints.Compression, live: false);
        Add("recovery.action", before.Recovery.Action.ToToken(), after.Recovery.Action.ToToken(), live: true);
        Add("recovery.maxAttempts", Number(before.Recovery.MaxAttempts), Number(after.Recovery.MaxAttempts), live: true);
        Add("recovery.window", DurationFormat.Format(before.Recovery.Window), DurationFormat.Format(after.Recovery.Window), live: true);

        var oldNames = before.Apps.Select(a => a.Name).ToList();
        var newNames = after.Apps.Select(a => a.Name).ToList();
        Add("apps", string.Join(", ", oldNames), string.Join(", ", newNames), live: false);
        foreach (var app in after.Apps)
        {
            if (before.FindApp(app.Name) is not { } old)
            {
                continue;
            }
            var key = $"apps.{app.Name}";
            Add($"{key}.command", Argv(old.Argv), Argv(app.Argv), live: false);
            Add($"{key}.env", Env(old.Env), Env(app.Env), live: false);
            Add($"{key}.cwd", old.Cwd, app.Cwd, live: false);
            Add($"{key}.user", old.User ?? "default", app.User ?? "default", live: false);
            Add($"{key}.after", List(old.After), List(app.After), live: false);
            Add($"{key}.ready", PolicyText.Describe(old.Ready), PolicyText.Describe(app.Ready), live: false);
            Add($"{key}.health", PolicyText.Describe(old.Health), PolicyText.Describe(app.Health), live: true);
        }
        return changes;
    }

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Number(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Argv(IReadOnlyList<string> argv) => string.Join(' ', argv);

    private static string List(IReadOnlyList<string> items) => items.Count == 0 ? "none" : string.Join(", ", items);

    private static string Env(IReadOnlyDictionary<string, string> env) =>
        env.Count == 0 ? "none" : string.Join(' ', env.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}={e.Value}"));
}
