using System.Diagnostics;
using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 5: another user (nobody) owns, or may write to, the agent's state directory,
/// a stored policy or a group's images.path, or plants symbolic links in a group's directory.
/// Each is refused with one line that says how to fix it, and nothing outside the group's
/// directories is written.
/// </summary>
[Collection(AgentCollection.Name)]
public sealed class HostileFilesTests(SupervisionFixture fx, ITestOutputHelper output)
{
    private const string Nobody = "65534";

    [Theory]
    [InlineData("state directory owned by nobody")]
    [InlineData("state directory writable by others")]
    [InlineData("policy planted by nobody")]
    [InlineData("policy writable by others")]
    public async Task UntrustedStateDirectory_TheAgentRefusesToStart(string situation)
    {
        var dir = Path.Combine(fx.TempDir, "hostile-" + Guid.NewGuid().ToString("N")[..8]);
        var state = Path.Combine(dir, "state");
        var policies = Path.Combine(state, "policies");
        Directory.CreateDirectory(policies, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // A planted policy would run a program as root at start: it must never run.
        var ran = Path.Combine(dir, "planted-policy-ran");
        var policy = Path.Combine(policies, "planted.yaml");
        await File.WriteAllTextAsync(policy, $"""
            group: planted
            autostart: true
            apps:
              - name: evil
                command: /bin/sh
                args: [-c, "touch {ran}; sleep 600"]
            """);
        File.SetUnixFileMode(policy, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (path, fix) = situation switch
        {
            "state directory owned by nobody" => (state, Chown(state)),
            "state directory writable by others" => (state, Chmod(state, "0777")),
            "policy planted by nobody" => (policy, Chown(policy)),
            _ => (policy, Chmod(policy, "0666")),
        };

        var agent = await Hactl.RunRaw(
            Repo.Hactl, ["agent", "run", "--listen", "unix:" + Path.Combine(dir, "agent.sock"), "--state-dir", state], Timeouts.Wait,
            output.WriteLine);

        Assert.NotEqual(0, agent.ExitCode);
        Assert.DoesNotContain(agent.StderrLines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        // The agent's own log says it too; the command's error is its last line.
        var refusal = Assert.Single(agent.StderrLines, l => l.StartsWith("understudy-agent: ", StringComparison.Ordinal));
        Assert.Contains("the agent did not start: ", refusal);
        Assert.Contains(path, refusal);
        Assert.Contains(fix, refusal);
        Assert.False(File.Exists(ran), "the planted policy ran");
    }

    [Fact]
    public async Task HostileImagesPath_IsRefused_AndNothingIsWrittenThere()
    {
        await using var g = fx.Group("images", output);
        var mine = Path.Combine(fx.TempDir, g.Name + "-images");
        var foreign = Path.Combine(fx.TempDir, g.Name + "-foreign");
        var open = Path.Combine(fx.TempDir, g.Name + "-open");
        foreach (var dir in new[] { mine, foreign, open })
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        Chown(foreign);
        Chmod(open, "0777");

        var refused = new (string Path, string Why)[]
        {
            (foreign, $"owned by uid {Nobody}"),
            (open, $"chmod go-w {open}"),
            ("/", "system directory"),
            ("/etc", "system directory"),
            ("/etc/understudy", "system directory"),
            ("/tmp", "system directory"),
            (fx.Agent.StateDir, "state directory"),
            (Path.Combine(fx.Agent.StateDir, "images"), "state directory"),
        };
        foreach (var (path, why) in refused)
        {
            var apply = (await g.Apply(Policy(g.Name, path))).FailsWithOneLine();
            Assert.Contains("images.path", apply.Stderr);
            Assert.Contains(why, apply.Stderr);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(foreign));
        Assert.Empty(Directory.EnumerateFileSystemEntries(open));
        Assert.False(Directory.Exists(Path.Combine(fx.Agent.StateDir, "images")));
        Assert.False(Path.Exists(Path.Combine(fx.Agent.StateDir, "groups", g.Name)));

        // Another group's image directory is its own.
        (await g.Apply(Policy(g.Name, mine))).Ok();
        await using var other = fx.Group("images-other", output);
        var taken = (await other.Apply(Policy(other.Name, mine))).FailsWithOneLine();
        Assert.Contains($"image directory of group {g.Name}", taken.Stderr);
        (await g.Run("group", "delete", g.Name)).Ok();
    }

    [Fact]
    public async Task SymlinksPlantedInTheGroupDirectory_AreNotFollowed()
    {
        await using var g = fx.Group("links", output);
        var images = Path.Combine(fx.TempDir, g.Name + "-images");
        (await g.Apply(Policy(g.Name, images))).Ok();
        var victim = Path.Combine(fx.TempDir, g.Name + "-victim");
        await File.WriteAllTextAsync(victim, "precious\n");
        File.CreateSymbolicLink(Path.Combine(images, "output.log"), victim);
        File.CreateSymbolicLink(Path.Combine(images, "native.log"), victim);

        var launch = await g.Run("launch", g.Name, "--app", "ticker", "--", Workloads.Service, "ticker");

        Assert.NotEqual(0, launch.ExitCode);
        Assert.Equal("precious\n", await File.ReadAllTextAsync(victim));
        await g.Run("stop", g.Name);
        (await g.Run("group", "delete", g.Name)).Ok();
    }

    private static string Policy(string group, string imagesPath) => $"""
        group: {group}
        images:
          path: {imagesPath}
        apps:
          - name: ticker
            command: {Workloads.Service}
            args: [ticker]
        """;

    /// <summary>Gives <paramref name="path"/> to nobody; returns what the refusal must say to do.</summary>
    private static string Chown(string path)
    {
        Run("chown", Nobody, path);
        return "chown";
    }

    private static string Chmod(string path, string mode)
    {
        Run("chmod", mode, path);
        return $"chmod go-w {path}";
    }

    private static void Run(string program, params string[] args)
    {
        using var process = Process.Start(program, args);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
