using Microsoft.Win32.SafeHandles;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The image files of a checkpoint being written, opened for reading while they are still in the
/// staging directory: the commit moves the directory, and open files move with it.
/// </summary>
internal sealed class GrowingImageFiles : IDisposable
{
    private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);

    /// <exception cref="IOException">A file could not be opened (the checkpoint was aborted meanwhile).</exception>
    public GrowingImageFiles(WritingCheckpoint writing)
    {
        Checkpoint = writing;
        Origin = ReplicaOrigin.Of(writing.Directory, manifest: null) ?? "";
        try
        {
            foreach (var name in writing.Files)
            {
                // FileShare.ReadWrite: the members are writing them.
                _handles[name] = File.OpenHandle(Path.Combine(writing.Directory, name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public WritingCheckpoint Checkpoint { get; }

    /// <summary>What a copy of it is (<see cref="ReplicaOrigin"/>), taken while it is staged: the same once committed; "": not known.</summary>
    public string Origin { get; }
    public string Id => Checkpoint.Id;
    public IReadOnlyList<string> Names => Checkpoint.Files;
    public Task<CheckpointManifest?> Finished => Checkpoint.Finished;

    /// <summary>
    /// Returns once any file holds something, or the checkpoint ended: the files are made before
    /// the freeze and written after the capture, and a push begun meanwhile would compete with the
    /// capture for the CPU (a TLS handshake, the standby's holdings) while the group is frozen.
    /// </summary>
    public async Task WaitForDataAsync(CancellationToken cancellationToken)
    {
        while (!Finished.IsCompleted && Names.All(name => Length(name) == 0))
        {
            await Task.WhenAny(Finished, Task.Delay(Poll, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>How often the sizes of files being written are looked at, while they do not change.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(5);

    /// <summary>What the file holds now.</summary>
    public long Length(string name) => RandomAccess.GetLength(Handle(name));

    /// <summary>
    /// Whether the member's writer is done with the file: once its .meta holds anything, since the
    /// writer appends the whole .pages first, then writes .meta (docs/image-format.md). A .meta seen
    /// done may still be growing; only what it holds is read.
    /// </summary>
    public bool IsWritten(string name) =>
        Length(name.EndsWith(PagesSuffix, StringComparison.Ordinal) ? name[..^PagesSuffix.Length] + MetaSuffix : name) > 0;

    private const string PagesSuffix = ".pages", MetaSuffix = ".meta";

    public async Task ReadExactlyAsync(string name, Memory<byte> data, long offset, CancellationToken cancellationToken)
    {
        var handle = Handle(name);
        while (data.Length > 0)
        {
            var read = await RandomAccess.ReadAsync(handle, data, offset, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new EndOfStreamException($"{name} of checkpoint {Id} ended at {offset} bytes while it was read");
            }
            data = data[read..];
            offset += read;
        }
    }

    private SafeFileHandle Handle(string name) =>
        _handles.TryGetValue(name, out var handle) ? handle : throw new IOException($"checkpoint {Id} has no image file {name}");

    public void Dispose()
    {
        foreach (var handle in _handles.Values)
        {
            handle.Dispose();
        }
        _handles.Clear();
    }
}
