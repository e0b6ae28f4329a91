using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// Keeps a group's newest N committed checkpoints (checkpoints.retention) and deletes the older
/// ones. An incremental checkpoint needs the checkpoints back to the full one before it, so
/// those are kept as well. A deleted checkpoint loses its manifest first: from then on it does
/// not exist, even if removing its files is interrupted.
/// </summary>
internal sealed class CheckpointRetention
{
    private readonly CheckpointStore _store;
    private readonly IEventPublisher _events;
    private readonly ILogger<CheckpointRetention> _logger;

    public CheckpointRetention(CheckpointStore store, IEventPublisher events, ILogger<CheckpointRetention> logger)
    {
        _store = store;
        _events = events;
        _logger = logger;
    }

    public void Apply(string group, int retention)
    {
        var usable = _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind).ToList();
        var keepFrom = Math.Max(0, usable.Count - retention);
        // Walk back to the full checkpoint the oldest kept one builds on.
        while (keepFrom > 0 && usable[keepFrom].Kind != CheckpointManifest.FullKind)
        {
            keepFrom--;
        }
        var deleted = new List<string>();
        foreach (var checkpoint in usable.Take(keepFrom))
        {
            try
            {
                File.Delete(Path.Combine(checkpoint.Directory, CheckpointManifest.FileName));
                Directory.Delete(checkpoint.Directory, recursive: true);
                deleted.Add(checkpoint.Id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("Could not delete checkpoint {CheckpointId} of group {Group}: {Error}", checkpoint.Id, group, e.Message);
            }
        }
        if (deleted.Count > 0)
        {
            _events.Publish(new CheckpointsDeleted(group, deleted, retention));
        }
    }
}
