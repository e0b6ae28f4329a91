using System.Text.Json;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>One event of `hactl events --json`.</summary>
public sealed record AgentEvent(long Seq, string Type, string Group, string Message, IReadOnlyDictionary<string, string> Fields)
{
    public string? Field(string name) => Fields.GetValueOrDefault(name);

    public static AgentEvent From(JsonElement e) => new(
        e.GetProperty("seq").GetInt64(),
        e.GetProperty("type").GetString()!,
        e.GetProperty("group").GetString()!,
        e.GetProperty("message").GetString()!,
        e.GetProperty("fields").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? ""));

    public override string ToString() => $"#{Seq} {Type}: {Message}";
}
