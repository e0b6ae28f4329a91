using Understudy.Images;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Picks the checkpoint a recovery restores: the newest one. After a hang, the newest one taken
/// while the group still answered its health check: a checkpoint from between the start of the
/// hang and its detection would bring the hang back.
/// </summary>
internal sealed class RecoveryPointSelector
{
    private readonly CheckpointStore _store;

    public RecoveryPointSelector(CheckpointStore store)
    {
        _store = store;
    }

    /// <returns>a checkpoint id, or null when the group has none that fits</returns>
    public string? Select(string group, Fault fault)
    {
        var usable = _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind);
        if (fault.AnsweredUtc is { } answered)
        {
            usable = usable.Where(c => new DateTimeOffset(DateTime.SpecifyKind(c.CreatedUtc, DateTimeKind.Utc)) <= answered);
        }
        return usable.LastOrDefault()?.Id;
    }
}
