namespace Understudy.Architecture.Tests;

/// <summary>
/// A layer of the guest agent: a namespace (with the namespaces below it), other namespaces that
/// belong to it, and, for the top layer, the public entry points in the assembly's root namespace.
/// </summary>
internal sealed record Layer(string Name, string Namespace, string[]? AlsoNamespaces = null, string[]? RootTypes = null)
{
    private const string Root = "Understudy.GuestAgent";

    private IEnumerable<string> Namespaces => [Namespace, .. AlsoNamespaces ?? []];

    /// <summary>What NetArchTest matches a dependency against (a namespace, or a type's full name, as prefixes).</summary>
    public IReadOnlyList<string> DependencyNames => [.. Namespaces, .. (RootTypes ?? []).Select(t => $"{Root}.{t}")];

    public bool Contains(Type type)
    {
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }
        var ns = type.Namespace ?? "";
        return Namespaces.Any(n => ns == n || ns.StartsWith(n + ".", StringComparison.Ordinal))
               || (ns == Root && (RootTypes ?? []).Contains(type.Name));
    }

    public override string ToString() => Name;
}

/// <summary>
/// The layers of the guest agent, bottom first (docs/architecture.md, "Layers of the guest
/// agent"): each may depend on the layers below it, never on one above.
/// </summary>
internal static class GuestAgentLayers
{
    public static readonly Layer Foundation = new("Foundation", "Understudy.GuestAgent.Foundation");
    public static readonly Layer Model = new("Model", "Understudy.GuestAgent.Model");
    public static readonly Layer Operations = new("Operations", "Understudy.GuestAgent.Operations");
    public static readonly Layer Supervision = new("Supervision", "Understudy.GuestAgent.Supervision");
    /// <summary>
    /// The gRPC services, with the contract's server stubs generated into the agent (namespace
    /// Understudy.GuestAgent.Contracts): wire messages stay in this layer too.
    /// </summary>
    public static readonly Layer Api = new("Api", "Understudy.GuestAgent.Api", AlsoNamespaces: ["Understudy.GuestAgent.Contracts"]);

    /// <summary>The composition root, and the public entry points in the root namespace.</summary>
    public static readonly Layer Hosting = new("Hosting", "Understudy.GuestAgent.Hosting", RootTypes: ["AgentHost", "AgentHostOptions"]);

    public static readonly IReadOnlyList<Layer> BottomUp = [Foundation, Model, Operations, Supervision, Api, Hosting];

    public static IReadOnlyList<Layer> Above(Layer layer) => BottomUp.SkipWhile(l => l != layer).Skip(1).ToList();
}
