using Understudy.Images;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Picks the checkpoint a recovery restores: the newest one. After a hang, the newest one taken
/// while the group still answered its health check: a checkpoint from between the start of the
/// hang and its detection would bring the hang back. One found not to restore (corrupt, its base
/// gone) is left out, and the next older one is taken.
/// </summary>
internal sealed class RecoveryPointSelector
{
    private readonly CheckpointStore _store;

    public RecoveryPointSelector(CheckpointStore store)
    {
        _store = store;
    }

    /// <param name="unusable">checkpoints already found not to restore, left out</param>
    /// <returns>a checkpoint id, or null when the group has none that fits</returns>
    public string? Select(string group, Fault fault, IReadOnlySet<string>? unusable = null)
    {
        var usable = _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind && unusable?.Contains(c.Id) != true);
        if (fault.AnsweredUtc is { } answered)
        {
            usable = usable.Where(c => new DateTimeOffset(DateTime.SpecifyKind(c.CreatedUtc, DateTimeKind.Utc)) <= answered);
        }
        return usable.LastOrDefault()?.Id;
    }

    /// <summary>When the group's newest checkpoint was taken; null when it has none.</summary>
    public DateTimeOffset? NewestTakenUtc(string group) =>
        _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind).LastOrDefault() is { } newest
            ? new DateTimeOffset(DateTime.SpecifyKind(newest.CreatedUtc, DateTimeKind.Utc))
            : null;
}
