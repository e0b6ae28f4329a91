using System.Text.RegularExpressions;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.Supervision.Tests;

/// <summary>The policy file format (docs/policy.md), without an agent.</summary>
public sealed class PolicyParserTests
{
    private const string Minimal = """
        group: g
        apps:
          - name: a
            command: /bin/true
        """;

    [Fact]
    public void TheExampleOfTheDocs_ParsesWithEverySetting()
    {
        var docs = File.ReadAllText(Path.Combine(Repo.Root, "docs", "policy.md"));
        var yaml = Regex.Match(docs, "```yaml\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        var policy = PolicyParser.Parse(yaml, "policy.md").Policy;

        Assert.Equal("shop", policy.Group);
        Assert.True(policy.Autostart);
        Assert.Equal("node-b", policy.Standby);
        Assert.Equal("/srv/understudy/shop", policy.ImagesPath);
        Assert.Equal(new CheckpointSchedule(TimeSpan.FromSeconds(30), 10, 5, "lz4"), policy.Checkpoints);
        Assert.Equal(new RecoveryPolicy(RecoveryAction.Restore, 3, TimeSpan.FromMinutes(10)), policy.Recovery);
        Assert.Equal(["db", "web", "indexer"], policy.Apps.Select(a => a.Name));
        var db = policy.Apps[0];
        Assert.Equal(["/usr/lib/postgresql/15/bin/postgres", "-D", "/srv/db"], db.Argv);
        Assert.Equal("UTC", db.Env["PGTZ"]);
        Assert.Equal(new ReadinessCheck(new TcpProbeSpec("127.0.0.1", 5432), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200)), db.Ready);
        Assert.Equal(new HealthCheck(new TcpProbeSpec("127.0.0.1", 5432), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2), 3), Assert.Single(db.Health));
        var web = policy.Apps[1];
        Assert.Equal("/", web.Cwd);
        Assert.Equal([new HttpProbeSpec(new Uri("http://127.0.0.1:8080/health")), new AliveProbeSpec()], web.Health.Select(h => h.Probe));
        Assert.Equal(new DelayProbeSpec(TimeSpan.FromSeconds(2)), policy.Apps[2].Ready?.Probe);
    }

    [Fact]
    public void Defaults_NoCheckpointsRestoreThreeTimesInTenMinutes()
    {
        var policy = PolicyParser.Parse(Minimal, "p.yaml").Policy;
        Assert.False(policy.Autostart);
        Assert.Null(policy.Standby);
        Assert.Null(policy.ImagesPath);
        Assert.Equal(new CheckpointSchedule(null, 1, 3, "none"), policy.Checkpoints);
        Assert.Equal(new RecoveryPolicy(RecoveryAction.Restore, 3, TimeSpan.FromMinutes(10)), policy.Recovery);
        var app = Assert.Single(policy.Apps);
        Assert.Null(app.Ready);
        Assert.Empty(app.Health);
        Assert.Equal("/", app.Cwd);
    }

    [Fact]
    public void LaunchOrder_FollowsAfter_AndOtherwiseTheFile()
    {
        var policy = PolicyParser.Parse("""
            group: g
            apps:
              - { name: client, command: c, after: [api, cache] }
              - { name: api, command: a, after: db }
              - { name: cache, command: c }
              - { name: db, command: d }
            """, "p.yaml").Policy;
        Assert.Equal(["cache", "db", "api", "client"], policy.Apps.Select(a => a.Name));
    }

    [Fact]
    public void CommandProbes_TakeAListOrAShellLine()
    {
        var policy = PolicyParser.Parse("""
            group: g
            apps:
              - name: a
                command: /bin/true
                ready: { command: "test -e /run/a" }
                health:
                  - command: [/usr/bin/curl, -f, http://x]
            """, "p.yaml").Policy;
        Assert.Equal(new CommandProbeSpec(["/bin/sh", "-c", "test -e /run/a"]), policy.Apps[0].Ready?.Probe);
        Assert.Equal(new CommandProbeSpec(["/usr/bin/curl", "-f", "http://x"]), policy.Apps[0].Health[0].Probe);
    }

    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("10s", 10_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("1m30s", 90_000)]
    [InlineData("2h", 7_200_000)]
    public void Durations_HaveUnits(string text, int milliseconds)
    {
        Assert.True(DurationFormat.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), duration);
        Assert.True(DurationFormat.TryParse(DurationFormat.Format(duration), out var again));
        Assert.Equal(duration, again);
    }

    [Theory]
    [InlineData("30")]
    [InlineData("10 s")]
    [InlineData("ten seconds")]
    [InlineData("5d")]
    [InlineData("-1s")]
    public void Durations_WithoutAUnitOrWithAnUnknownOne_AreRefused(string text) =>
        Assert.False(DurationFormat.TryParse(text, out _));

    [Theory]
    [InlineData("group: g\nautostart: yes\napps: [{name: a, command: x}]\n", 2, "autostart: 'yes' is not true or false")]
    [InlineData("group: g\napps:\n  - name: a\n    args: [x]\n", 3, "apps[0]: 'command' is required")]
    [InlineData("group: g\napps:\n  - name: a\n    command: x\n    name: b\n", 5, "Duplicate key name")]
    [InlineData("group: g\napps: [{name: a, command: x, after: [b]}]\n", 2, "apps[0].after[0]: 'b' is not an application of this group")]
    [InlineData("group: g\napps: [{name: a, command: x, after: a}]\n", 2, "a cannot start after itself")]
    [InlineData("group: g\napps:\n  - name: a\n    command: x\n    ready: { tcp: 80, file: /x }\n", 5, "checks one thing: tcp and file are both given")]
    [InlineData("group: g\napps:\n  - name: a\n    command: x\n    health: [{ delay: 1s }]\n", 5, "unknown key 'delay'")]
    [InlineData("group: g\napps:\n  - name: a\n    command: x\n    ready: { tcp: 'localhost:http' }\n", 5, "is not a TCP address")]
    [InlineData("group: g\napps:\n  - name: a\n    command: x\n    cwd: srv\n", 5, "apps[0].cwd: 'srv' is not an absolute path")]
    [InlineData("group: g\napps:\n  - name: a\n    command: bin/x\n", 4, "'bin/x' is a relative path")]
    [InlineData("group: g\nrecovery: { action: reboot }\napps: [{name: a, command: x}]\n", 2, "'reboot' is not a recovery action")]
    [InlineData("group: g\ncheckpoints: { retention: 0 }\napps: [{name: a, command: x}]\n", 2, "checkpoints.retention: 0 is out of range: it must be from 1 to 1000000")]
    [InlineData("group: g\ncheckpoints: { compression: zstd }\napps: [{name: a, command: x}]\n", 2, "checkpoints.compression: 'zstd' is not one of: none, lz4")]
    [InlineData("group: g/h\napps: [{name: a, command: x}]\n", 1, "group: group name \"g/h\" has characters")]
    [InlineData("group: g\nstandby: 'node b'\napps: [{name: a, command: x}]\n", 2, "standby: 'node b' is not a node name")]
    [InlineData("group: g\napps: [{name: a, command: x}\n", 3, "not valid YAML")]
    public void InvalidPolicies_NameTheirLineAndReason(string yaml, int line, string reason)
    {
        var e = Assert.Throws<PolicyException>(() => PolicyParser.Parse(yaml, "p.yaml"));
        Assert.Equal(line, e.Line);
        Assert.Contains(reason, e.Message);
        Assert.StartsWith($"p.yaml line {line}, column ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void AnEmptyFile_IsRefused() =>
        Assert.Contains("the file is empty", Assert.Throws<PolicyException>(() => PolicyParser.Parse("# nothing\n", "p.yaml")).Message);

    [Fact]
    public void Changes_SayWhatTakesEffectAtOnce()
    {
        var before = PolicyParser.Parse(Minimal, "p.yaml").Policy;
        var after = PolicyParser.Parse("""
            group: g
            checkpoints: { interval: 5s, compression: lz4 }
            apps:
              - name: a
                command: /bin/false
                health: [{ alive: true }]
            """, "p.yaml").Policy;
        var changes = PolicyDiff.Compare(before, after);
        Assert.Contains(new PolicyChange("checkpoints.interval: off -> 5s", Live: true), changes);
        Assert.Contains(new PolicyChange("checkpoints.compression: none -> lz4", Live: false), changes);
        Assert.Contains(new PolicyChange("apps.a.command: /bin/true -> /bin/false", Live: false), changes);
        Assert.Contains(changes, c => c.Text.StartsWith("apps.a.health: none -> alive every 10s") && c.Live);
        Assert.Equal(4, changes.Count);
    }
}
