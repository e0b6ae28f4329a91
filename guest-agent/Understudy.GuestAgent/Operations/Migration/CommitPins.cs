using System.Collections.Concurrent;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// Pins each checkpoint of one group inside its commit, while the group's merges are still held,
/// for as long as a migration runs. Pinned any later, a background merge could have rewritten an
/// incremental round into full images first, and the round would send the whole memory again.
/// </summary>
internal sealed class CommitPins : IDisposable
{
    private readonly CheckpointKeeper _keeper;
    private readonly string _group;
    private readonly ConcurrentDictionary<string, CheckpointPin> _pins = new(StringComparer.Ordinal);

    public CommitPins(CheckpointKeeper keeper, string group)
    {
        _keeper = keeper;
        _group = group;
        _keeper.Committed += OnCommitted;
    }

    /// <summary>The pin of a checkpoint committed since; the caller owns it.</summary>
    public CheckpointPin Take(string id) => _pins.TryRemove(id, out var pin) ? pin : _keeper.Pin(_group, id);

    public void Dispose()
    {
        _keeper.Committed -= OnCommitted;
        foreach (var id in _pins.Keys)
        {
            if (_pins.TryRemove(id, out var pin))
            {
                pin.Dispose();
            }
        }
    }

    private void OnCommitted(CheckpointInfo committed)
    {
        if (committed.Group == _group)
        {
            _pins.TryAdd(committed.Id, _keeper.Pin(_group, committed.Id));
        }
    }
}
