using System.Globalization;

namespace Understudy.GuestAgent.Foundation.Events;

internal enum EventSeverity
{
    Info,
    Warning,
    Error,
}

/// <summary>
/// A lifecycle event of a group. Each kind is its own record, so that subscribers inside the
/// agent can match on it; outside the agent every event has the same shape (EventRecord):
/// its type, group, one-line message and fields.
/// </summary>
internal abstract record AgentEvent(string Group)
{
    /// <summary>The event's name on the stream and in the history: member.exited, recovery.started, ...</summary>
    public abstract string Type { get; }

    public virtual EventSeverity Severity => EventSeverity.Info;

    /// <summary>One line for people.</summary>
    public abstract string Message { get; }

    /// <summary>The event's data, camelCase names; null values are left out.</summary>
    public abstract IEnumerable<(string Name, object? Value)> Fields();

    protected static string Text(object value) => value switch
    {
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        _ => value.ToString() ?? "",
    };

    /// <summary>The fields as text, for the wire and the history.</summary>
    public IReadOnlyDictionary<string, string> FieldsAsText() =>
        Fields().Where(f => f.Value is not null).ToDictionary(f => f.Name, f => Text(f.Value!), StringComparer.Ordinal);
}
