using System.Collections.Concurrent;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// One lock per group over the rewriting of its committed checkpoints: a merge replaces a
/// checkpoint's files, so two merges of a group, or a merge and a restore reading that group's
/// images, never run at once.
/// </summary>
internal sealed class GroupStoreLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    public SemaphoreSlim For(string group) => _locks.GetOrAdd(group, _ => new SemaphoreSlim(1, 1));
}
