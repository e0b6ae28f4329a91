using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 4, item 6: an invalid policy file is rejected with the offending line and the reason,
/// and the running group is left untouched. Cases: unknown keys, a cycle in the launch order,
/// bad durations.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class InvalidPolicyTests(SupervisionFixture fx, ITestOutputHelper output)
{
    public static TheoryData<string, string, string, string> Cases => new()
    {
        {
            "unknown key",
            """
            checkpoints:
              intervl: 5s
            """,
            "intervl:",
            "checkpoints.intervl: unknown key 'intervl' (did you mean 'interval'?)"
        },
        {
            "unknown key in an app",
            """
            apps:
              - name: a
                command: /bin/sleep
                args: ["1000"]
                restart: always
            """,
            "restart:",
            "apps[0].restart: unknown key 'restart'"
        },
        {
            "cycle in the launch order",
            """
            apps:
              - name: a
                command: /bin/sleep
                args: ["1000"]
                after: [c]
              - name: b
                command: /bin/sleep
                args: ["1000"]
                after: [a]
              - name: c
                command: /bin/sleep
                args: ["1000"]
                after: [b]
            """,
            // Reported at the entry that closes the cycle: b's.
            "after: [a]",
            "apps[1].after[0]: the launch order has a cycle: a -> c -> b -> a"
        },
        {
            "duration without a unit",
            """
            checkpoints:
              interval: 30
            """,
            "interval: 30",
            "checkpoints.interval: '30' has no unit"
        },
        {
            "duration that is not one",
            """
            recovery:
              window: 10 minutes
            """,
            "window: 10 minutes",
            "recovery.window: '10 minutes' is not a duration"
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task InvalidPolicy_IsRejectedWithItsLineAndReason_AndTheRunningGroupIsUntouched(
        string title, string fragment, string offending, string reason)
    {
        await using var g = fx.Group("invalid", output);
        var port = Workloads.FreePort();
        var valid = $$"""
            group: {{g.Name}}
            checkpoints:
              interval: 1h
            apps:
              - name: ticker
                command: {{Workloads.Service}}
                args: [ticker, --tcp, "{{port}}"]
                ready: { tcp: "{{port}}" }
            """;
        (await g.Apply(valid)).Ok();
        (await g.Run("group", "start", g.Name)).Ok();
        var before = await g.Members();
        var shown = await g.Show();
        var mark = await g.Mark();

        // The group's name, then the bad part: a whole policy when it has apps of its own.
        var invalid = fragment.Contains("apps:")
            ? $"group: {g.Name}\n{fragment}\n"
            : valid.Replace("checkpoints:\n  interval: 1h\n", fragment + "\n", StringComparison.Ordinal);
        Assert.NotEqual(valid, invalid);
        var path = Path.Combine(g.WorkDir, "bad.yaml");
        await File.WriteAllTextAsync(path, invalid);

        var rejected = (await g.Run("group", "apply", "-f", path)).FailsWithOneLine();
        var line = Workloads.LineOf(invalid, offending);
        Assert.Contains($"{path} line {line}, column ", rejected.Stderr);
        Assert.Contains(reason, rejected.Stderr);
        Assert.Contains("nothing was changed", rejected.Stderr);
        output.WriteLine($"{title}: {rejected.Stderr.Trim()}");

        // Untouched: the same policy, the same processes, no change recorded.
        var after = await g.Show();
        Assert.Equal(shown.Str("policyYaml"), after.Str("policyYaml"));
        Assert.Equal(shown.Str("policyApplied"), after.Str("policyApplied"));
        Assert.Equal(before, await g.Members());
        Assert.Equal("running", after.Prop("availability")?.Str("state"));
        Assert.DoesNotContain(await g.Events(mark), e => e.Type.StartsWith("policy.", StringComparison.Ordinal) || e.Type.StartsWith("group.", StringComparison.Ordinal));
    }
}
