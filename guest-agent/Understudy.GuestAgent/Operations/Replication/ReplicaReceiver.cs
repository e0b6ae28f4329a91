using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// The standby's side of streaming: receives another node's checkpoints of a group into staging
/// directories under their own ids (through the store owner), verifies every chunk's CRC-32C, and
/// commits a copy once its files match the manifest's sizes and checksums and its bases are here:
/// the newest checkpoint is always a complete one. One transfer per group at a time; a transfer
/// broken off keeps what arrived, and <see cref="Holdings"/> says how much, so that it resumes there.
/// </summary>
internal sealed class ReplicaReceiver
{
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly GroupRegistry _groups;
    private readonly ReplicationFaults _faults;
    private readonly ILogger<ReplicaReceiver> _logger;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    // Per group, the node that sent the newest copy committed here, and its id: that node holds it.
    private readonly ConcurrentDictionary<string, (string Node, long Seq)> _newestReceived = new(StringComparer.Ordinal);

    public ReplicaReceiver(CheckpointStore store, CheckpointKeeper keeper, GroupRegistry groups, ReplicationFaults faults, ILogger<ReplicaReceiver> logger)
    {
        _store = store;
        _keeper = keeper;
        _groups = groups;
        _faults = faults;
        _logger = logger;
    }

    public StandbyHoldings Holdings(string group)
    {
        GroupNames.Require(group);
        var committed = _store.List(group).Where(c => c.Kind != CheckpointInfo.CorruptKind).Select(c => c.Id).ToList();
        var receiving = _store.Staging(group).ToDictionary(
            s => s.Id, s => new PartialCopy(ReadOrigin(group, s.Id)?.Origin ?? "", s.Files.ToDictionary(f => f.Name, f => f.Length, StringComparer.Ordinal)),
            StringComparer.Ordinal);
        return new StandbyHoldings(committed, receiving);
    }

    /// <summary>
    /// The newest checkpoint of <paramref name="group"/> that <paramref name="node"/> sent here since this agent
    /// started, or null: that node holds it, and every checkpoint of its chain, since it sent them.
    /// </summary>
    public string? NewestReceivedFrom(string group, string node) =>
        _newestReceived.TryGetValue(group, out var newest) && newest.Node == node ? CheckpointId.Format(newest.Seq) : null;

    /// <summary>Starts (or goes on with) receiving checkpoint <paramref name="id"/> of <paramref name="group"/> from node <paramref name="sender"/>.</summary>
    /// <param name="sender">the sending node's name, from its certificate</param>
    /// <param name="described">the sender as the log names it (its name and address)</param>
    /// <param name="origin">what the sender's copy is (<see cref="ReplicaOrigin"/>; "": not known): part of another copy is started over</param>
    /// <exception cref="AgentException">The group runs on this node, or the id is not valid.</exception>
    public async Task<IncomingReplica> BeginAsync(string group, string id, string sender, string described, string origin, CancellationToken cancellationToken)
    {
        GroupNames.Require(group);
        if (!CheckpointId.TryParse(id, out _))
        {
            throw AgentException.InvalidArgument($"invalid checkpoint id '{id}'");
        }
        var gate = _locks.GetOrAdd(group, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_groups.Find(group) is { IsRunning: true })
            {
                throw AgentException.FailedPrecondition(
                    $"group {group} runs on this node: it cannot receive another node's checkpoints of it; stop it here first");
            }
            if (File.Exists(Path.Combine(_store.CheckpointDir(group, id), CheckpointManifest.FileName)))
            {
                return new IncomingReplica(this, group, id, sender, staged: null, gate, _faults);
            }
            // One transfer per group: what another one left unfinished will not be finished.
            foreach (var (other, _) in _store.Staging(group).Where(s => s.Id != id))
            {
                Discard(group, other);
                _logger.LogInformation("Replica of checkpoint {CheckpointId} of group {Group} superseded by {NewId}; its partial files removed", other, group, id);
            }
            // Part of a copy of other files under this id (an aborted checkpoint's, or from before a merge):
            // going on from it would mix two checkpoints' bytes.
            if (origin.Length > 0 && Directory.Exists(_store.StagingPath(group, id)) && ReadOrigin(group, id) != (sender, origin))
            {
                Discard(group, id);
                _logger.LogInformation(
                    "Replica of checkpoint {CheckpointId} of group {Group}: what arrived was part of another copy under its id; started over", id, group);
            }
            var staged = _keeper.BeginReplica(group, id);
            if (origin.Length > 0)
            {
                WriteOrigin(group, id, $"{sender}\n{origin}");
            }
            _logger.LogInformation("Receiving checkpoint {CheckpointId} of group {Group} from node {Sender}", id, group, described);
            return new IncomingReplica(this, group, id, sender, staged, gate, _faults);
        }
        catch
        {
            gate.Release();
            throw;
        }
    }

    /// <summary>Checks a received copy against its manifest and commits it.</summary>
    internal CheckpointInfo Commit(StagedCheckpoint staged, string sender, string manifestJson)
    {
        CheckpointManifest manifest;
        try
        {
            manifest = CheckpointManifest.FromJson(manifestJson);
        }
        catch (ImageFormatException e)
        {
            throw AgentException.InvalidArgument($"the manifest of checkpoint {staged.Group}/{staged.Id} is not valid: {e.Message}");
        }
        if (manifest.Group != staged.Group || manifest.Id != staged.Id)
        {
            throw AgentException.InvalidArgument($"a manifest of {manifest.Group}/{manifest.Id} cannot commit {staged.Group}/{staged.Id}");
        }
        foreach (var (name, bytes) in ReplicaFiles.Of(manifest))
        {
            var path = Path.Combine(staged.Directory, name);
            var length = File.Exists(path) ? new FileInfo(path).Length : -1;
            if (length != bytes)
            {
                throw AgentException.FailedPrecondition(
                    $"checkpoint {staged.Group}/{staged.Id} is incomplete: {name} holds {Math.Max(length, 0)} of {bytes} bytes; send the rest first");
            }
        }
        foreach (var member in manifest.Members)
        {
            var crc = Crc32C.Compute(File.ReadAllBytes(Path.Combine(staged.Directory, member.Meta)));
            if (crc != member.MetaCrc32c)
            {
                throw AgentException.FailedPrecondition(
                    $"checkpoint {staged.Group}/{staged.Id}: {member.Meta} checksum 0x{crc:x8} differs from the manifest's 0x{member.MetaCrc32c:x8}");
            }
            if (member.IsIncremental)
            {
                RequireBase(staged, member);
            }
        }
        foreach (var file in Directory.EnumerateFiles(staged.Directory))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.FlushToDisk(handle);
        }
        var committed = staged.Commit(manifest);
        File.Delete(OriginPath(staged.Group, staged.Id));
        _newestReceived.AddOrUpdate(staged.Group, (sender, committed.Seq), (_, was) => committed.Seq > was.Seq || was.Node != sender ? (sender, committed.Seq) : was);
        _logger.LogInformation(
            "Replica of checkpoint {CheckpointId} of group {Group} committed: kind {Kind}, {Bytes} bytes", committed.Id, committed.Group, committed.Kind, committed.Bytes);
        return committed;
    }

    private void Discard(string group, string id)
    {
        _keeper.DiscardStaging(group, id);
        File.Delete(OriginPath(group, id));
    }

    // Beside the staging directory, not in it: the commit renames the directory into the checkpoints.
    private string OriginPath(string group, string id) => _store.StagingPath(group, id) + ".origin";

    private void WriteOrigin(string group, string id, string text)
    {
        using var file = new FileStream(OriginPath(group, id), new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        file.Write(System.Text.Encoding.UTF8.GetBytes(text));
    }

    private (string Sender, string Origin)? ReadOrigin(string group, string id)
    {
        try
        {
            var lines = File.ReadAllText(OriginPath(group, id)).Split('\n', 2);
            return lines.Length == 2 ? (lines[0], lines[1]) : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Keeps the newest <paramref name="retention"/> checkpoints of the group (0: all), as its sender does.</summary>
    internal void ApplyRetention(string group, int retention)
    {
        if (retention > 0)
        {
            _keeper.ApplyRetention(group, retention);
        }
    }

    private void RequireBase(StagedCheckpoint staged, ManifestMember member)
    {
        var baseId = CheckpointId.Format(member.BaseSeq);
        CheckpointManifest baseManifest;
        try
        {
            baseManifest = _store.LoadManifest(staged.Group, baseId);
        }
        catch (Exception e) when (e is CheckpointNotFoundException or ImageFormatException)
        {
            throw AgentException.FailedPrecondition(
                $"checkpoint {staged.Group}/{staged.Id} applies to checkpoint {baseId}, which this node does not hold; send that one first");
        }
        if (baseManifest.Members.All(m => m.Vpid != member.BaseImageVpid))
        {
            throw AgentException.FailedPrecondition(
                $"checkpoint {staged.Group}/{staged.Id}: process {member.Vpid} applies to process {member.BaseImageVpid} of checkpoint {baseId}, which has none");
        }
    }
}

/// <summary>One checkpoint being received; disposing it without a commit keeps what arrived.</summary>
internal sealed class IncomingReplica : IDisposable
{
    private readonly ReplicaReceiver _receiver;
    private readonly StagedCheckpoint? _staged;
    private readonly SemaphoreSlim _gate;
    private readonly ReplicationFaults _faults;
    private readonly string _sender;
    // The file chunks are being appended to: a file's chunks come in order, one file after the other.
    private FileStream? _file;
    private string? _fileName;

    internal IncomingReplica(ReplicaReceiver receiver, string group, string id, string sender, StagedCheckpoint? staged, SemaphoreSlim gate, ReplicationFaults faults)
    {
        _receiver = receiver;
        _sender = sender;
        Group = group;
        Id = id;
        _staged = staged;
        _gate = gate;
        _faults = faults;
    }

    public string Group { get; }
    public string Id { get; }

    /// <summary>This node has the checkpoint committed already: nothing to receive.</summary>
    public bool AlreadyHeld => _staged is null;

    /// <summary>Bytes written by this transfer.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>
    /// Writes a chunk into its file, after checking its checksum and that it leaves no gap: it starts
    /// where the file ends, or inside it, where what the file holds from there is written again.
    /// </summary>
    /// <exception cref="AgentException">InvalidArgument: a bad name, a gap, or a checksum mismatch.</exception>
    public async Task WriteAsync(ReplicaChunk chunk, CancellationToken cancellationToken)
    {
        // Committed here since the sender asked for the holdings (another stream of the same
        // checkpoint won: the standby stream and a migration both send): its chunks are not needed.
        if (_staged is not { } staged)
        {
            return;
        }
        if (chunk.File.Length == 0 || chunk.File.Contains('/', StringComparison.Ordinal) || chunk.File is "." or ".."
            || chunk.File == CheckpointManifest.FileName)
        {
            throw AgentException.InvalidArgument($"checkpoint {Group}/{Id}: '{chunk.File}' is not the name of an image file");
        }
        var crc = Crc32C.Compute(chunk.Data.Span);
        if (crc != chunk.Crc32c)
        {
            throw AgentException.InvalidArgument(
                $"checkpoint {Group}/{Id}: the chunk of {chunk.File} at {chunk.Offset} has checksum 0x{crc:x8}, the sender said 0x{chunk.Crc32c:x8}; it was damaged on the way");
        }
        var file = await OpenAsync(staged, chunk.File).ConfigureAwait(false);
        if (file.Length > chunk.Offset)
        {
            // The sender read the holdings while an earlier push of this checkpoint, whose connection it had
            // given up on, was still arriving (a link that came back delivers what was in flight, then the
            // push ends): the same bytes again, written over from where this one starts.
            file.SetLength(chunk.Offset);
        }
        if (file.Length != chunk.Offset)
        {
            throw AgentException.InvalidArgument(
                $"checkpoint {Group}/{Id}: a chunk of {chunk.File} starts at {chunk.Offset} but the file holds {file.Length} bytes; ask for the holdings and go on from there");
        }
        file.Position = chunk.Offset;
        await file.WriteAsync(chunk.Data, cancellationToken).ConfigureAwait(false);
        BytesReceived += chunk.Data.Length;
        _faults.Received(chunk.Data.Length);
    }

    private async Task<FileStream> OpenAsync(StagedCheckpoint staged, string name)
    {
        if (_file is not null && _fileName == name)
        {
            return _file;
        }
        if (_file is not null)
        {
            await _file.DisposeAsync().ConfigureAwait(false);
        }
        var path = Path.Combine(staged.Directory, name);
        _file = null;
        _file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.Write,
            Share = FileShare.Read, // no lock: a reader may look at what arrived (one writer per group: the gate)
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        _fileName = name;
        return _file;
    }

    private void CloseFile()
    {
        _file?.Dispose();
        _file = null;
        _fileName = null;
    }

    public CheckpointInfo? Commit(string manifestJson)
    {
        if (_staged is null)
        {
            return null;
        }
        CloseFile();
        return _receiver.Commit(_staged, _sender, manifestJson);
    }

    /// <summary>
    /// After the commit was answered: deleting old checkpoints takes a while (a whole image's
    /// files), and a migration's sender waits for the answer with its group frozen.
    /// </summary>
    public void ApplyRetention(int retention) => _receiver.ApplyRetention(Group, retention);

    public void Dispose()
    {
        CloseFile();
        _staged?.Dispose();
        _gate.Release();
    }
}
