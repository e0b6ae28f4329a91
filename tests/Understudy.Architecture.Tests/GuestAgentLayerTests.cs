using NetArchTest.Rules;

namespace Understudy.Architecture.Tests;

/// <summary>
/// The direction rule of the guest agent's layers: Foundation, Model, Operations, Supervision, Api,
/// Hosting, each depending only on the layers below it. One test per layer, so that a failure names
/// the layer and the types that break the rule.
/// </summary>
public sealed class GuestAgentLayerTests
{
    [Fact]
    public void Foundation_depends_on_no_layer_above_it() => AssertDependsOnNothingAbove(GuestAgentLayers.Foundation);

    [Fact]
    public void Model_depends_on_no_layer_above_it() => AssertDependsOnNothingAbove(GuestAgentLayers.Model);

    [Fact]
    public void Operations_depend_on_no_layer_above_them() => AssertDependsOnNothingAbove(GuestAgentLayers.Operations);

    [Fact]
    public void Supervision_depends_on_no_layer_above_it() => AssertDependsOnNothingAbove(GuestAgentLayers.Supervision);

    [Fact]
    public void Api_depends_on_no_layer_above_it() => AssertDependsOnNothingAbove(GuestAgentLayers.Api);

    /// <summary>A type outside every layer would escape the rules above.</summary>
    [Fact]
    public void Every_type_of_the_agent_belongs_to_a_layer()
    {
        var strays = ProductAssemblies.GuestAgent.GetTypes()
            .Where(t => (t.Namespace ?? "").StartsWith("Understudy", StringComparison.Ordinal))
            .Where(t => !GuestAgentLayers.BottomUp.Any(layer => layer.Contains(t)))
            .Select(t => t.FullName)
            .ToList();
        Assert.True(strays.Count == 0, $"types outside the layers {string.Join(", ", GuestAgentLayers.BottomUp)}: {string.Join(", ", strays)}");
    }

    private static void AssertDependsOnNothingAbove(Layer layer)
    {
        var above = GuestAgentLayers.Above(layer);
        var result = Types.InAssembly(ProductAssemblies.GuestAgent)
            .That().ResideInNamespace(layer.Namespace)
            .ShouldNot().HaveDependencyOnAny([.. above.SelectMany(l => l.DependencyNames)])
            .GetResult();
        Assert.True(result.IsSuccessful,
            $"{layer} may depend only on the layers below it, not on {string.Join(", ", above)}; these types do: " +
            string.Join(", ", result.FailingTypeNames ?? []));
    }
}
