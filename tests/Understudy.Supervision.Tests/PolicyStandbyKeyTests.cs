using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.Supervision.Tests;

/// <summary>
/// A migration's target sets the policy's <c>standby:</c> to the node the group came from, in the
/// text it stores: that one value changes, or the key is added; the rest stays as it was.
/// </summary>
public sealed class PolicyStandbyKeyTests
{
    [Fact]
    public void AValue_IsReplaced_CommentsAndLayoutKept()
    {
        const string text = """
            # the shop
            group: shop
            standby: node-b   # where it streams
            apps:
              - name: a
                command: /bin/true
            """;
        var parsed = PolicyStandbyKey.With(text, "shop.yaml", "node-a");
        Assert.Equal("node-a", parsed.Policy.Standby);
        Assert.Equal(text.Replace("standby: node-b", "standby: node-a", StringComparison.Ordinal), parsed.Text);
    }

    [Fact]
    public void NoKey_OneLineIsAddedBeforeTheFirstKey()
    {
        const string text = "# the shop\ngroup: shop\napps:\n  - name: a\n    command: /bin/true\n";
        var parsed = PolicyStandbyKey.With(text, "shop.yaml", "node-a");
        Assert.Equal("node-a", parsed.Policy.Standby);
        Assert.Equal("# the shop\nstandby: node-a\ngroup: shop\napps:\n  - name: a\n    command: /bin/true\n", parsed.Text);
    }

    [Theory]
    [InlineData("group: shop\nstandby:\napps: [{name: a, command: /bin/true}]\n")]
    [InlineData("group: shop\nstandby: \"node-c\"\napps: [{name: a, command: /bin/true}]\n")]
    [InlineData("{group: shop, apps: [{name: a, command: /bin/true}]}")]
    [InlineData("{group: shop, standby: node-c, apps: [{name: a, command: /bin/true}]}")]
    public void EmptyQuotedOrFlowStyle_TheStandbyIsSet(string text)
    {
        var parsed = PolicyStandbyKey.With(text, "shop.yaml", "node-a");
        Assert.Equal("node-a", parsed.Policy.Standby);
        Assert.Equal("shop", parsed.Policy.Group);
    }
}
