using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Supervision.Policies;
using Understudy.Images;

namespace Understudy.Supervision.Tests;

/// <summary>
/// The policy store on real files: a group that moved to another node keeps its policy as the
/// standby's copy, which the agent finds again as such (never as a policy to start the group by),
/// and which wins over an active policy beside it (a crash halfway through a change).
/// </summary>
public sealed class PolicyStoreStandbyCopyTests : IDisposable
{
    private const string Text = "group: shop\nautostart: true\napps:\n  - name: a\n    command: /bin/true\n";
    private readonly string _stateDir = Path.Combine("/tmp", "uspolicy-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly PolicyStore _store;

    public PolicyStoreStandbyCopyTests()
    {
        var options = Options.Create(new AgentOptions { StateDir = _stateDir });
        _store = new PolicyStore(new StatePaths(options, new CheckpointStore(_stateDir)), NullLogger<PolicyStore>.Instance);
    }

    public void Dispose() => Directory.Delete(_stateDir, recursive: true);

    private string Policies => Path.Combine(_stateDir, "policies");

    [Fact]
    public void KeptAsTheStandbysCopy_FoundAgainAsSuch_AndAnActivePolicyMakesItGo()
    {
        _store.Save(PolicyParser.Parse(Text, "shop.yaml"));
        Assert.Null(Assert.Single(_store.LoadAll()).RunsOn);

        _store.KeepAsStandbyCopy("shop", "node-b");
        var copy = Assert.Single(_store.LoadAll());
        Assert.True(copy.IsStandbyCopy);
        Assert.Equal("node-b", copy.RunsOn);
        Assert.Equal(Text, copy.Parsed.Text);
        Assert.False(File.Exists(Path.Combine(Policies, "shop.yaml")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(Policies, "shop.standby")));

        // The group came back: the policy it brought is in force, the copy is gone.
        _store.Save(PolicyParser.Parse(Text.Replace("autostart: true", "autostart: false", StringComparison.Ordinal), "shop.yaml"));
        var active = Assert.Single(_store.LoadAll());
        Assert.False(active.IsStandbyCopy);
        Assert.False(active.Parsed.Policy.Autostart);
        Assert.Equal(["shop.yaml"], Directory.GetFiles(Policies).Select(Path.GetFileName));
    }

    [Fact]
    public void BothThere_TheStandbysCopyWins_NothingStartsTheGroup()
    {
        _store.Save(PolicyParser.Parse(Text, "shop.yaml"));
        File.Copy(Path.Combine(Policies, "shop.yaml"), Path.Combine(Policies, "shop.standby"));
        Assert.True(Assert.Single(_store.LoadAll()).IsStandbyCopy);

        _store.Delete("shop");
        Assert.Empty(_store.LoadAll());
        Assert.Empty(Directory.GetFiles(Policies));
    }
}
