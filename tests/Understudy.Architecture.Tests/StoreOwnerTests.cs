using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Understudy.Architecture.Tests;

/// <summary>
/// One owner of the checkpoint store (docs/architecture.md, "The checkpoint store and pins"): no
/// code outside Operations/Store calls what creates, commits, rewrites or deletes a checkpoint in
/// the image library.
/// </summary>
public sealed class StoreOwnerTests
{
    private const string StoreNamespace = "Understudy.GuestAgent.Operations.Store";

    private static readonly HashSet<string> ChangingCalls =
    [
        "Understudy.Images.CheckpointStore::CreateStaging",
        "Understudy.Images.CheckpointStore::Commit",
        "Understudy.Images.CheckpointStore::DiscardStaging",
        "Understudy.Images.CheckpointStore::OpenStaging",
        "Understudy.Images.CheckpointStore::DiscardAllStaging",
        "Understudy.Images.CheckpointStore::ReplaceManifest",
        "Understudy.Images.CheckpointStore::RemoveUnreferencedFiles",
        "Understudy.Images.ImageMerger::Merge",
    ];

    [Fact]
    public void Only_the_store_owner_changes_checkpoints()
    {
        using var assembly = AssemblyDefinition.ReadAssembly(ProductAssemblies.GuestAgent.Location);
        var offenders = AllTypes(assembly.MainModule.Types)
            .Where(type => Namespace(type) != StoreNamespace)
            .SelectMany(type => type.Methods.Where(m => m.HasBody).SelectMany(method => method.Body.Instructions
                .Where(i => i.OpCode.FlowControl == FlowControl.Call && i.Operand is MethodReference callee
                            && ChangingCalls.Contains($"{callee.DeclaringType.FullName}::{callee.Name}"))
                .Select(i => $"{type.FullName}.{method.Name} calls {((MethodReference)i.Operand).Name}")))
            .ToList();
        Assert.True(offenders.Count == 0, $"only {StoreNamespace} may change checkpoints: {string.Join("; ", offenders)}");
    }

    private static IEnumerable<TypeDefinition> AllTypes(IEnumerable<TypeDefinition> types) =>
        types.SelectMany(t => AllTypes(t.NestedTypes).Prepend(t));

    private static string Namespace(TypeDefinition type)
    {
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }
        return type.Namespace;
    }
}
