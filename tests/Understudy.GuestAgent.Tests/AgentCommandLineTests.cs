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
            "--interceptor", "/opt/us/lib/x.so", "--json", "--full-every", "0", "--chain-limit", "25", "--no-background-merge", "--keep-groups");

        Assert.Equal(new AgentRunSettings("/run/a.sock", "/var/lib/s", "/opt/us/bin", "/opt/us/lib/x.so", JsonLogs: true,
            FullEvery: 0, ChainLimitPercent: 25, BackgroundMerges: false, KeepGroups: true), settings);
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
        Assert.Equal(settings, Read([.. settings.ToArguments()]));
    }

    [Theory]
    [InlineData("--listen 'tcp:1' is not a listen address: expected unix:PATH", "--listen", "tcp:1", "--state-dir", "s")]
    [InlineData("--full-every '-1' is not a whole number from 0 to 2147483647", "--listen", "unix:a", "--state-dir", "s", "--full-every", "-1")]
    [InlineData("--chain-limit '0' is not a whole number from 1 to 2147483647", "--listen", "unix:a", "--state-dir", "s", "--chain-limit", "0")]
    [InlineData("--full-every 'abc' is not a whole number", "--listen", "unix:a", "--state-dir", "s", "--full-every", "abc")]
    [InlineData("--chain-limit '99999999999999' is not a whole number", "--listen", "unix:a", "--state-dir", "s", "--chain-limit", "99999999999999")]
    public void A_bad_value_is_a_usage_error_that_says_why(string why, params string[] args)
    {
        var (_, parse) = Parse(args);

        Assert.Contains(why, UsageError.Line("understudy-agent", parse));
    }
}
