using System.Text.Json;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>Tolerant readers for hactl's JSON (numbers may come as strings, names in any case).</summary>
public static class JsonRead
{
    public static JsonElement? Prop(this JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (e.TryGetProperty(name, out var v))
        {
            return v;
        }

        foreach (var p in e.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return p.Value;
            }
        }

        return null;
    }

    public static string? Str(this JsonElement e, string name)
    {
        var v = e.Prop(name);
        return v?.ValueKind switch
        {
            JsonValueKind.String => v.Value.GetString(),
            JsonValueKind.Number => v.Value.GetRawText(),
            _ => null,
        };
    }

    public static long? Long(this JsonElement e, string name)
    {
        var v = e.Prop(name);
        if (v is null)
        {
            return null;
        }

        if (v.Value.ValueKind == JsonValueKind.Number && v.Value.TryGetInt64(out long n))
        {
            return n;
        }

        if (v.Value.ValueKind == JsonValueKind.String && long.TryParse(v.Value.GetString(), out n))
        {
            return n;
        }

        return null;
    }

    public static IEnumerable<JsonElement> Array(this JsonElement e, string name)
    {
        var v = e.Prop(name);
        return v is { ValueKind: JsonValueKind.Array } a ? a.EnumerateArray() : Enumerable.Empty<JsonElement>();
    }

    /// <summary>Every object in the document, depth first.</summary>
    public static IEnumerable<JsonElement> Objects(this JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                yield return e;
                foreach (var p in e.EnumerateObject())
                {
                    foreach (var o in p.Value.Objects())
                    {
                        yield return o;
                    }
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray())
                {
                    foreach (var o in item.Objects())
                    {
                        yield return o;
                    }
                }

                break;
        }
    }

    /// <summary>Every integer value of a property with this name, anywhere in the document.</summary>
    public static IEnumerable<long> AllLongs(this JsonElement e, string name) =>
        e.Objects().Select(o => o.Long(name)).Where(v => v.HasValue).Select(v => v!.Value);
}

/// <summary>A group member as `hactl status --json` / `restore --json` report it.</summary>
public sealed record Member(int Pid, int HostPid, string? App, long? ExecCount, string? Program, string? State)
{
    public static Member From(JsonElement m) => new(
        (int)(m.Long("pid") ?? 0), (int)(m.Long("hostPid") ?? 0), m.Str("app"),
        m.Long("execCount"), m.Str("program"), m.Str("state"));

    /// <summary>False for members listed as exited or dead.</summary>
    public bool IsLive => State is null ||
        !new[] { "exit", "dead", "gone", "zombie", "killed" }.Any(s => State.Contains(s, StringComparison.OrdinalIgnoreCase));

    public override string ToString() =>
        $"pid {Pid} hostPid {HostPid} app {App} program {Program} execCount {ExecCount} state {State}";
}
