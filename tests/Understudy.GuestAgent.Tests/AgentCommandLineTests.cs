using System.CommandLine;
using Understudy.GuestAgent.CommandLine;

namespace Understudy.GuestAgent.Tests;

/// <summary>understudy-agent's options, which hactl agent run checks and passes on.</summary>
public sealed class AgentCommandLineTests
{
    private static (AgentRunOptions Options, ParseResult Parse) Parse(params string[] args)
    {
        var options = new AgentRunOptions(AgentRunOptions.NativeDirOption("the test's own directory"));
        var root = new RootCommand();
        foreach (var option in options.All)
        {
            root.Add(option);
        }

        return (options, root.Parse(args));
    }

    private static AgentRunSettings Read(params string[] args)
    {
        var (options, parse) = Parse(args);
        Assert.Empty(parse.Errors);
        return options.Read(parse);
    }

    [Fact]
    public void The_arguments_hactl_passes_on_give_the_agent_the_same_settings()
    {
        var settings = Read("--listen", "unix:/run/a.sock", "--state-dir", "/var/lib/s", "--native-dir", "/opt/us/bin",
            "--interceptor", "/opt/us/lib/x.so", "--json", "--full-every", "0", "--chain-limit", "25", "--no-background-merge", "--keep-groups",
            "--peer-timeout", "2500ms", "--migration-resolve-timeout", "90s");

        Assert.Equal(new AgentRunSettings("/run/a.sock", "/var/lib/s", "/opt/us/bin", "/opt/us/lib/x.so", JsonLogs: true,
            FullEvery: 0, ChainLimitPercent: 25, BackgroundMerges: false, KeepGroups: true,
            PeerTimeout: TimeSpan.FromMilliseconds(2500), MigrationResolveTimeout: TimeSpan.FromSeconds(90)), settings);
        Assert.Equal(settings, Read([.. settings.ToArguments()]));
    }

    [Fact]
    public void Defaults_are_resolved_and_spelled_out()
    {
        var settings = Read("--listen", "unix:rel/a.sock", "--state-dir", "state", "--native-dir", "/opt/us/bin");

        Assert.Equal(Path.GetFullPath("rel/a.sock"), settings.ListenSocket);
        Assert.Equal(Path.GetFullPath("state"), settings.StateDir);
        Assert.Equal("/opt/us/lib/libunderstudy.so", settings.InterceptorPath);
        Assert.Equal((false, AgentRunOptions.DefaultFullEvery, AgentRunOptions.DefaultChainLimitPercent, true, false),
            (settings.JsonLogs, settings.FullEvery, settings.ChainLimitPercent, settings.BackgroundMerges, settings.KeepGroups));
        Assert.Equal((AgentRunOptions.DefaultPeerTimeout, AgentRunOptions.DefaultMigrationResolveTimeout),
            (settings.PeerTimeout, settings.MigrationResolveTimeout));
        Assert.Equal(settings, Read([.. settings.ToArguments()]));
    }

    [Fact]
    public void The_peer_options_make_a_node_of_a_cluster_and_are_passed_on()
    {
        var settings = Read("--listen", "unix:/run/a.sock", "--state-dir", "/s", "--native-dir", "/opt/us/bin",
            "--node", "node-a", "--cluster", "/etc/us/cluster", "--peer-listen", "127.0.0.1:7400", "--peer", "node-b=127.0.0.2:7400",
            "--peer", "node-c=[::1]:7401");

        Assert.Equal(
            new PeerSettings("node-a", "/etc/us/cluster", "127.0.0.1:7400", [new PeerNode("node-b", "127.0.0.2:7400"), new PeerNode("node-c", "[::1]:7401")]),
            settings.Peers);
        Assert.Equal(settings, Read([.. settings.ToArguments()]));
        Assert.Null(Read("--listen", "unix:/run/a.sock", "--state-dir", "/s").Peers);
    }

    [Theory]
    [InlineData("--node and --cluster go together", "--peer-listen", "127.0.0.1:7400")]
    [InlineData("--node and --cluster go together", "--node", "a", "--peer", "b=127.0.0.1:1")]
    [InlineData("--peer-listen 'localhost:7400' is not an address", "--node", "a", "--cluster", "c", "--peer-listen", "localhost:7400")]
    [InlineData("--peer-listen '127.0.0.1' is not an address", "--node", "a", "--cluster", "c", "--peer-listen", "127.0.0.1")]
    [InlineData("--peer 'b' is not a peer: expected NAME=IP:PORT", "--node", "a", "--cluster", "c", "--peer", "b")]
    [InlineData("--peer 'a=127.0.0.1:1': node a is this node itself", "--node", "a", "--cluster", "c", "--peer", "a=127.0.0.1:1")]
    [InlineData("node b is given twice", "--node", "a", "--cluster", "c", "--peer", "b=127.0.0.1:1", "--peer", "b=127.0.0.1:2")]
    [InlineData("--node: node name 'a/b' is not valid", "--node", "a/b", "--cluster", "c")]
    public void A_bad_peer_option_is_a_usage_error_that_says_why(string why, params string[] args)
    {
        var options = new AgentRunOptions(AgentRunOptions.NativeDirOption("the test's own directory"));
        var root = new RootCommand();
        foreach (var option in options.All)
        {
            root.Add(option);
        }
        options.AddPeerValidators(root);

        var parse = root.Parse(["--listen", "unix:a", "--state-dir", "s", .. args]);

        Assert.Contains(why, UsageError.Line("understudy-agent", parse));
    }

    [Theory]
    [InlineData("--listen 'tcp:1' is not a listen address: expected unix:PATH", "--listen", "tcp:1", "--state-dir", "s")]
    [InlineData("--full-every '-1' is not a whole number from 0 to 2147483647", "--listen", "unix:a", "--state-dir", "s", "--full-every", "-1")]
    [InlineData("--chain-limit '0' is not a whole number from 1 to 2147483647", "--listen", "unix:a", "--state-dir", "s", "--chain-limit", "0")]
    [InlineData("--full-every 'abc' is not a whole number", "--listen", "unix:a", "--state-dir", "s", "--full-every", "abc")]
    [InlineData("--chain-limit '99999999999999' is not a whole number", "--listen", "unix:a", "--state-dir", "s", "--chain-limit", "99999999999999")]
    [InlineData("--peer-timeout '1s' is not a duration from 2s to 10m", "--listen", "unix:a", "--state-dir", "s", "--peer-timeout", "1s")]
    [InlineData("--peer-timeout '10' is not a duration from 2s to 10m; write a whole number and a unit, like 500ms, 10s or 2m", "--listen", "unix:a", "--state-dir", "s", "--peer-timeout", "10")]
    [InlineData("--migration-resolve-timeout '1.5s' is not a duration from 1s to 10m", "--listen", "unix:a", "--state-dir", "s", "--migration-resolve-timeout", "1.5s")]
    [InlineData("--migration-resolve-timeout '11m' is not a duration", "--listen", "unix:a", "--state-dir", "s", "--migration-resolve-timeout", "11m")]
    [InlineData("--migration-resolve-timeout '-5s' is not a duration", "--listen", "unix:a", "--state-dir", "s", "--migration-resolve-timeout=-5s")]
    public void A_bad_value_is_a_usage_error_that_says_why(string why, params string[] args)
    {
        var (_, parse) = Parse(args);

        Assert.Contains(why, UsageError.Line("understudy-agent", parse));
    }
}
