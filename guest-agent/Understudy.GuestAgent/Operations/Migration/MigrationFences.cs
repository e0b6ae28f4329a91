using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Operations.Migration;

/// <summary>
/// The target's promise never to run a migration its source gave up (docs/architecture.md,
/// "Moving a live group"). A migration is named by its group and the checkpoint its takeover
/// restores. <see cref="Fence"/> records it durably (<c>STATE/migration-fences/GROUP</c>, one id a
/// line, written to a temporary file, flushed, renamed: an agent restart keeps it) and cancels a
/// takeover of it in progress; <see cref="Enter"/> refuses a takeover of a fenced migration, however
/// late it arrives. Both under one lock: a takeover is either refused, or registered before the
/// fence and then cancelled by it.
/// </summary>
internal sealed class MigrationFences
{
    private readonly string _dir;
    private readonly ILogger<MigrationFences> _logger;
    private readonly Lock _lock = new();
    // The fenced ids of each group read or written so far.
    private readonly Dictionary<string, HashSet<string>> _fenced = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Group, string Id), CancellationTokenSource> _running = [];

    public MigrationFences(IOptions<AgentOptions> options, ILogger<MigrationFences> logger)
        : this(options.Value.StateDir, logger)
    {
    }

    public MigrationFences(string stateDir, ILogger<MigrationFences> logger)
    {
        _dir = Path.Combine(stateDir, "migration-fences");
        _logger = logger;
    }

    /// <summary>
    /// A takeover of the migration begins: its token is cancelled should the migration be fenced
    /// meanwhile. Dispose it once the takeover is over.
    /// </summary>
    /// <exception cref="AgentException">FailedPrecondition: the source gave the migration up already.</exception>
    public TakeOverTicket Enter(string group, string id, string source, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (FencedIds(group).Contains(id))
            {
                _logger.LogWarning("Takeover of group {Group} from checkpoint {CheckpointId} refused: node {Source} gave that migration up already", group, id, source);
                throw AgentException.FailedPrecondition(
                    $"takeover of group {group} from checkpoint {id} refused: node {source} gave that migration up already, and this node promised never to run it");
            }
            var key = (group, id);
            if (_running.ContainsKey(key))
            {
                throw AgentException.FailedPrecondition($"takeover of group {group} from checkpoint {id} refused: one is in progress here already");
            }
            var running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _running[key] = running;
            return new TakeOverTicket(this, key, running);
        }
    }

    /// <summary>
    /// The source gives the migration up: from now on no takeover of it runs here, and one in progress
    /// is cancelled (its restore kills what it rebuilt unless the group was resumed already).
    /// </summary>
    /// <exception cref="IOException">the fence could not be written: nothing is promised</exception>
    public void Fence(string group, string id)
    {
        lock (_lock)
        {
            var fenced = FencedIds(group);
            if (!fenced.Contains(id))
            {
                Write(group, [.. fenced, id]);
                fenced.Add(id);
                _logger.LogInformation("Migration of group {Group} from checkpoint {CheckpointId} fenced: no takeover of it runs here any more", group, id);
            }
            if (_running.TryGetValue((group, id), out var running))
            {
                _logger.LogWarning("Migration of group {Group} from checkpoint {CheckpointId} fenced while its takeover was in progress: stopping it", group, id);
                running.Cancel();
            }
        }
    }

    private void Leave((string Group, string Id) key, CancellationTokenSource running)
    {
        lock (_lock)
        {
            if (_running.TryGetValue(key, out var registered) && ReferenceEquals(registered, running))
            {
                _running.Remove(key);
            }
        }
        running.Dispose();
    }

    private HashSet<string> FencedIds(string group)
    {
        if (!_fenced.TryGetValue(group, out var ids))
        {
            var path = PathOf(group);
            ids = File.Exists(path)
                ? [.. File.ReadAllLines(path).Select(line => line.Trim()).Where(line => line.Length > 0)]
                : new HashSet<string>(StringComparer.Ordinal);
            _fenced[group] = ids;
        }
        return ids;
    }

    private void Write(string group, IEnumerable<string> ids) => PrivateFile.WriteDurably(PathOf(group), string.Concat(ids.Select(id => id + "\n")));

    private string PathOf(string group) => Path.Combine(_dir, group);

    /// <summary>A takeover in progress: <see cref="Token"/> is cancelled when its caller goes or its migration is fenced.</summary>
    internal sealed class TakeOverTicket(MigrationFences fences, (string Group, string Id) key, CancellationTokenSource running) : IDisposable
    {
        public CancellationToken Token { get; } = running.Token;

        public void Dispose() => fences.Leave(key, running);
    }
}
