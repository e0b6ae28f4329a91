using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Understudy.GuestAgent.Foundation.Events;

/// <summary>Where the agent's parts report lifecycle events.</summary>
internal interface IEventPublisher
{
    void Publish(AgentEvent agentEvent);
}

/// <summary>
/// The agent's event stream (publish/subscribe). Each event is numbered, logged as a
/// structured Serilog event, recorded in the history, and handed to every subscriber, in one
/// order for all of them.
/// </summary>
internal sealed class EventBus : IEventPublisher
{
    private readonly object _sync = new();
    private readonly EventJournal _journal;
    private readonly TimeProvider _time;
    private readonly ILogger<EventBus> _logger;
    private readonly List<EventSubscription> _subscribers = [];
    private long _lastSeq = -1;

    public EventBus(EventJournal journal, TimeProvider time, ILogger<EventBus> logger)
    {
        _journal = journal;
        _time = time;
        _logger = logger;
    }

    public void Publish(AgentEvent agentEvent)
    {
        lock (_sync)
        {
            var published = new PublishedEvent(NextSeq(), _time.GetUtcNow(), agentEvent);
            var record = published.ToRecord();
            Log(record);
            _journal.Append(record);
            foreach (var subscriber in _subscribers)
            {
                subscriber.Offer(published);
            }
        }
    }

    /// <summary>
    /// Live events from now on. <see cref="EventSubscription.StartSeq"/> is the last event
    /// before the subscription, so history up to it plus the subscription misses nothing.
    /// </summary>
    public EventSubscription Subscribe()
    {
        lock (_sync)
        {
            var subscription = new EventSubscription(EnsureLastSeq(), Unsubscribe);
            _subscribers.Add(subscription);
            return subscription;
        }
    }

    /// <summary>Recorded events with a sequence number up to <paramref name="untilSeq"/>, oldest first.</summary>
    public IEnumerable<EventRecord> History(string? group, long untilSeq) =>
        _journal.Read().Where(r => r.Seq <= untilSeq && (group is null || r.Group == group));

    private void Unsubscribe(EventSubscription subscription)
    {
        lock (_sync)
        {
            _subscribers.Remove(subscription);
        }
    }

    private long NextSeq() => _lastSeq = EnsureLastSeq() + 1;

    /// <summary>Numbering carries on from the history; read lazily, under the lock.</summary>
    private long EnsureLastSeq()
    {
        if (_lastSeq < 0)
        {
            _lastSeq = _journal.LastSeq();
        }
        return _lastSeq;
    }

    private void Log(EventRecord record)
    {
        var level = record.Severity switch
        {
            "error" => LogLevel.Error,
            "warning" => LogLevel.Warning,
            _ => LogLevel.Information,
        };
        // The fields become properties of the Serilog event (Serilog reads dictionary scopes).
        var properties = record.Fields.ToDictionary(f => PascalCase(f.Key), f => (object?)f.Value);
        properties["EventSeq"] = record.Seq;
        using (_logger.BeginScope(properties))
        {
            _logger.Log(level, "Group {Group}: {EventType}: {EventMessage}", record.Group, record.Type, record.Message);
        }
    }

    private static string PascalCase(string name) => name.Length == 0 ? name : char.ToUpperInvariant(name[0]) + name[1..];
}

/// <summary>A subscriber's queue of live events; disposing it unsubscribes.</summary>
internal sealed class EventSubscription : IDisposable
{
    private readonly Channel<PublishedEvent> _channel = Channel.CreateUnbounded<PublishedEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<EventSubscription> _unsubscribe;

    public EventSubscription(long startSeq, Action<EventSubscription> unsubscribe)
    {
        StartSeq = startSeq;
        _unsubscribe = unsubscribe;
    }

    /// <summary>The last event published before this subscription started.</summary>
    public long StartSeq { get; }

    public ChannelReader<PublishedEvent> Reader => _channel.Reader;

    public void Offer(PublishedEvent published) => _channel.Writer.TryWrite(published);

    public void Dispose()
    {
        _unsubscribe(this);
        _channel.Writer.TryComplete();
    }
}
