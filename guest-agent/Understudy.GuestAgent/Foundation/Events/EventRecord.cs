namespace Understudy.GuestAgent.Foundation.Events;

/// <summary>
/// An event as the world sees it: on the agent's event stream (agent_services.proto, Events), in the
/// history (STATE/events.jsonl) and in hactl events. <see cref="Seq"/> grows by one per event
/// and carries on across agent restarts.
/// </summary>
internal sealed record EventRecord(
    long Seq, DateTimeOffset Time, string Type, string Severity, string Group, string Message,
    IReadOnlyDictionary<string, string> Fields);

/// <summary>An event as subscribers inside the agent get it: numbered, and still typed.</summary>
internal sealed record PublishedEvent(long Seq, DateTimeOffset Time, AgentEvent Event)
{
    public EventRecord ToRecord() => new(
        Seq, Time, Event.Type, Event.Severity.ToString().ToLowerInvariant(), Event.Group, Event.Message, Event.FieldsAsText());
}
