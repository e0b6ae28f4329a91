using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// One group's stream to its standby: a loop that sends the newest pinned checkpoint whenever
/// there is one, and tries again every <see cref="StandbyReplicator.RetryDelay"/> while the standby
/// is unreachable. Only the newest checkpoint waits to be sent, since sending the newest brings
/// its chain along; but while the standby is reachable, the older ones not yet sent stay pinned
/// until it is sent. Released, they would be merged meanwhile, and the newest one's chain would
/// then carry a whole merged image instead of the small increments: a stream that fell behind
/// by two checkpoints sent a full image and fell further behind.
/// <para>
/// A checkpoint being written goes while it is written (<see cref="OfferWriting"/>), when the
/// stream has nothing older to send first: the standby then commits it moments after the primary.
/// </para>
/// </summary>
internal sealed class ReplicationStream
{
    private readonly string _group;
    private readonly StandbyReplicator _replicator;
    private readonly object _sync = new();
    private const int MaxHeld = 256;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private CheckpointPin? _pending;
    private GrowingImageFiles? _growing;
    private List<CheckpointPin> _held = [];
    private string? _lastReplicated;
    private DateTimeOffset? _unreachableSince;
    private string? _error;
    private long _bytesSent;
    private bool _kicked;
    // Counts the standby's changes: the outcome of a send to a node that is no longer the standby is not recorded.
    private int _standbyChanges;

    public ReplicationStream(string group, StandbyReplicator replicator)
    {
        _group = group;
        _replicator = replicator;
    }

    public Task Completion { get; private set; } = Task.CompletedTask;

    public void Start(CancellationToken stopping) => Completion = Task.Run(() => RunAsync(stopping), CancellationToken.None);

    /// <summary>
    /// A newly committed checkpoint, pinned: sent next. An older one still waiting stays pinned
    /// (unmerged) until then, unless the standby is unreachable: a catch-up later starts from a
    /// merged checkpoint anyway, and merges and retention must not wait for it.
    /// </summary>
    public void Offer(CheckpointPin pin)
    {
        CheckpointPin? released = null;
        lock (_sync)
        {
            if (_pending is { } replaced)
            {
                if (_unreachableSince is null && _held.Count < MaxHeld)
                {
                    _held.Add(replaced);
                }
                else
                {
                    released = replaced;
                }
            }
            _pending = pin;
        }
        released?.Dispose();
        Wake();
    }

    /// <summary>
    /// A checkpoint whose images are being written: sent as they grow, after anything older waiting
    /// (then only if the standby holds its base by then). One waits at most, the newest; it is
    /// dropped when the standby is unreachable, whose catch-up goes from committed checkpoints.
    /// </summary>
    public void OfferWriting(GrowingImageFiles files)
    {
        GrowingImageFiles? dropped;
        lock (_sync)
        {
            if (_unreachableSince is not null)
            {
                dropped = files;
            }
            else
            {
                dropped = _growing;
                _growing = files;
            }
        }
        dropped?.Dispose();
        Wake();
    }

    /// <summary>
    /// The group has a new standby: what was known of the one before does not apply. The new one
    /// holds <paramref name="held"/> and its chain for certain (null: nothing known yet); the stream
    /// looks at the store and asks the standby what it holds before it sends anything.
    /// </summary>
    public void NewStandby(string? held)
    {
        lock (_sync)
        {
            Forget();
            _lastReplicated = held;
            _kicked = true;
        }
        Wake();
    }

    /// <summary>The group has no standby any more: nothing waits to be sent, nothing is known.</summary>
    public void NoStandby()
    {
        CheckpointPin? dropped;
        GrowingImageFiles? growing;
        List<CheckpointPin> held;
        lock (_sync)
        {
            Forget();
            dropped = _pending;
            _pending = null;
            held = TakeHeld();
            growing = _growing;
            _growing = null;
        }
        dropped?.Dispose();
        growing?.Dispose();
        Release(held);
    }

    private void Forget()
    {
        _standbyChanges++;
        _lastReplicated = null;
        _unreachableSince = null;
        _error = null;
        _kicked = false;
    }

    public ReplicationState State(IReadOnlyList<CheckpointInfo> committed)
    {
        lock (_sync)
        {
            var last = _lastReplicated is null ? 0 : CheckpointId.Parse(_lastReplicated);
            var behind = committed.Where(c => c.Seq > last).ToList();
            var state = _unreachableSince is not null ? ReplicationState.Unreachable
                : behind.Count == 0 ? ReplicationState.InSync
                : ReplicationState.Behind;
            return new ReplicationState(
                _replicator.StandbyOf(_group) ?? "", state, behind.Count, behind.Sum(c => c.Bytes), _lastReplicated, _unreachableSince, _error,
                Interlocked.Read(ref _bytesSent));
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // Awake already.
        }
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var failing = _unreachableSince is not null;
                await _wake.WaitAsync(failing ? _replicator.RetryDelay : Timeout.InfiniteTimeSpan, stopping).ConfigureAwait(false);
                await SendNextAsync(stopping).ConfigureAwait(false);
                await SendGrowingAsync(stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                break;
            }
        }
        List<CheckpointPin> held;
        lock (_sync)
        {
            _pending?.Dispose();
            _pending = null;
            _growing?.Dispose();
            _growing = null;
            held = TakeHeld();
        }
        Release(held);
    }

    /// <summary>Must be called under the lock.</summary>
    private List<CheckpointPin> TakeHeld()
    {
        var held = _held;
        _held = [];
        return held;
    }

    private static void Release(List<CheckpointPin> pins)
    {
        foreach (var pin in pins)
        {
            pin.Dispose();
        }
    }

    private async Task SendNextAsync(CancellationToken stopping)
    {
        CheckpointPin? pin;
        bool look;
        List<CheckpointPin> held;
        int standbyChanges;
        lock (_sync)
        {
            standbyChanges = _standbyChanges;
            pin = _pending;
            _pending = null;
            held = TakeHeld();
            look = _kicked || _unreachableSince is not null;
            _kicked = false;
        }
        pin ??= look ? _replicator.PinNewest(_group) : null;
        if (pin is null || IsReplicated(pin.Id))
        {
            // Sent while it was written, before its commit offered it here.
            pin?.Dispose();
            Release(held);
            return;
        }
        // The older checkpoints waiting behind it go with its chain (or, after a failure, are
        // caught up from a merged one): either way they need not stay unmerged any longer.
        using var releaseHeld = new HeldPins(held);
        using (pin)
        {
            try
            {
                await _replicator.SendAsync(pin, n => Interlocked.Add(ref _bytesSent, n), stopping).ConfigureAwait(false);
                lock (_sync)
                {
                    if (standbyChanges != _standbyChanges)
                    {
                        return;
                    }
                    Replicated(pin.Id);
                    if (_unreachableSince is not null)
                    {
                        _replicator.Logger.LogInformation("Standby of group {Group} reachable again; checkpoint {CheckpointId} replicated", _group, pin.Id);
                    }
                    _unreachableSince = null;
                    _error = null;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                var first = false;
                lock (_sync)
                {
                    if (standbyChanges != _standbyChanges)
                    {
                        return;
                    }
                    first = _unreachableSince is null;
                    _unreachableSince ??= _replicator.Now;
                    _error = e is StandbyLinkException ? e.Message : $"sending checkpoint {pin.Id} failed: {e.Message}";
                }
                if (first)
                {
                    _replicator.Logger.LogWarning(
                        "Standby {Node} of group {Group} unreachable: {Error}; the group runs on and its checkpoints wait to be sent",
                        _replicator.StandbyOf(_group), _group, _error);
                }
            }
        }
    }

    /// <summary>Under the lock.</summary>
    private void Replicated(string id)
    {
        if (!IsReplicated(id))
        {
            _lastReplicated = id;
        }
    }

    private bool IsReplicated(string id)
    {
        lock (_sync)
        {
            return _lastReplicated is not null && CheckpointId.Parse(id) <= CheckpointId.Parse(_lastReplicated);
        }
    }

    /// <summary>
    /// The checkpoint being written, if one waits: sent as it grows. Anything that goes wrong leaves
    /// it to the ordinary send once it is committed, which goes on from what the standby received.
    /// </summary>
    private async Task SendGrowingAsync(CancellationToken stopping)
    {
        GrowingImageFiles? files;
        int standbyChanges;
        lock (_sync)
        {
            files = _growing;
            _growing = null;
            standbyChanges = _standbyChanges;
            if (files is not null && (_pending is not null || _unreachableSince is not null || IsReplicated(files.Id)))
            {
                // Something older waits, or it went already: the ordinary send takes it from here.
                files.Dispose();
                files = null;
            }
        }
        if (files is null)
        {
            return;
        }
        using (files)
        {
            try
            {
                if (await _replicator.SendWhileWrittenAsync(files, n => Interlocked.Add(ref _bytesSent, n), stopping).ConfigureAwait(false))
                {
                    lock (_sync)
                    {
                        if (standbyChanges == _standbyChanges)
                        {
                            Replicated(files.Id);
                        }
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !stopping.IsCancellationRequested)
            {
                if (e is not OperationCanceledException)
                {
                    _replicator.Logger.LogInformation(
                        "Checkpoint {CheckpointId} of group {Group} could not go to its standby while it was written: {Error}; it goes once committed",
                        files.Id, _group, e.Message);
                }
            }
        }
    }

    /// <summary>Releases the held pins when the send they waited for is over.</summary>
    private sealed class HeldPins(List<CheckpointPin> pins) : IDisposable
    {
        public void Dispose() => Release(pins);
    }
}
