using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// A checkpoint being written: its id, claimed in order, and its staging directory, where the
/// members write their images. It exists once <see cref="Commit"/> returned; until then, or
/// after <see cref="Discard"/>, it never did. While it is open, the group's background merges
/// wait (disposing it lets them go on), so that they never compete with the group's capture.
/// </summary>
internal sealed class StagedCheckpoint : IDisposable
{
    private readonly CheckpointKeeper _keeper;
    private readonly IDisposable _mergesPaused;

    public StagedCheckpoint(CheckpointKeeper keeper, string group, string id, long seq, string directory, IDisposable mergesPaused)
    {
        _keeper = keeper;
        Group = group;
        Id = id;
        Seq = seq;
        Directory = directory;
        _mergesPaused = mergesPaused;
    }

    public string Group { get; }
    public string Id { get; }
    public long Seq { get; }
    public string Directory { get; }

    /// <summary>Writes the manifest and makes the checkpoint exist (docs/protocol.md, "Manifest").</summary>
    public CheckpointInfo Commit(CheckpointManifest manifest) => _keeper.Commit(this, manifest);

    /// <summary>Removes the staging directory: an aborted checkpoint leaves nothing.</summary>
    public void Discard() => _keeper.Discard(this);

    public void Dispose() => _mergesPaused.Dispose();
}
