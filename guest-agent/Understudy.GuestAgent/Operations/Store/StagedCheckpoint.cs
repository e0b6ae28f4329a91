using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// A checkpoint being written: its id, claimed in order, and its staging directory, where the
/// members write their images. It exists once <see cref="Commit"/> returned; until then, or
/// after <see cref="Discard"/>, it never did. While it is open, the group's background merges
/// wait (disposing it lets them go on), so that they never compete with the group's capture or
/// commit; only while the members' writers write (<see cref="WhileWritten"/>) do they go on.
/// </summary>
internal sealed class StagedCheckpoint : IDisposable
{
    private readonly CheckpointKeeper _keeper;
    private readonly object _sync = new();
    private readonly TaskCompletionSource<CheckpointManifest?> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IDisposable? _mergesPaused;
    private bool _disposed;

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

    /// <summary>
    /// The members write <paramref name="files"/> now (incremental images on <paramref name="baseSeq"/>, 0 for
    /// none): the keeper tells whoever listens (<see cref="CheckpointKeeper.Writing"/>).
    /// </summary>
    public void Writing(long baseSeq, IReadOnlyList<string> files) =>
        _keeper.OnWriting(new WritingCheckpoint(Group, Id, baseSeq, Directory, files, _finished.Task));

    /// <summary>
    /// The group runs again and only the members' writers are left: the group's background merges
    /// may go on until <see cref="Commit"/> holds them again. Back-to-back checkpoints (an interval
    /// shorter than a checkpoint) would hold them for good otherwise, and the chain would grow
    /// until a full checkpoint is forced.
    /// </summary>
    public void WhileWritten()
    {
        lock (_sync)
        {
            _mergesPaused?.Dispose();
            _mergesPaused = null;
        }
    }

    /// <summary>Writes the manifest and makes the checkpoint exist (docs/protocol.md, "Manifest").</summary>
    public CheckpointInfo Commit(CheckpointManifest manifest)
    {
        HoldMerges();
        var committed = _keeper.Commit(this, manifest);
        _finished.TrySetResult(manifest);
        return committed;
    }

    /// <summary>Removes the staging directory: an aborted checkpoint leaves nothing.</summary>
    public void Discard()
    {
        _finished.TrySetResult(null);
        _keeper.Discard(this);
    }

    public void Dispose()
    {
        _finished.TrySetResult(null);
        lock (_sync)
        {
            _disposed = true;
            _mergesPaused?.Dispose();
            _mergesPaused = null;
        }
    }

    private void HoldMerges()
    {
        lock (_sync)
        {
            if (!_disposed)
            {
                _mergesPaused ??= _keeper.PauseMerges(Group);
            }
        }
    }
}
