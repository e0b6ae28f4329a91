using System.Text.Json;

namespace Understudy.Hactl.Output;

/// <summary>
/// Renders any JSON document as readable text: objects as indented "key: value" lines, arrays of
/// objects as tables (nested parts shown as [N] or {...}), long arrays shortened. Used for
/// documents whose shape belongs to another component (image inspection); --json shows all.
/// </summary>
public sealed class JsonSummary(TextWriter writer, int maxScalarItems = 16, int maxRows = 200, int maxColumns = 14)
{
    public void Write(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            WriteObject(element, "");
        }
        else
        {
            WriteValue(element, "");
        }
    }

    private void WriteObject(JsonElement obj, string indent)
    {
        foreach (var property in obj.EnumerateObject())
        {
            WriteProperty(property.Name, property.Value, indent);
        }
    }

    private void WriteProperty(string name, JsonElement value, string indent)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object when !value.EnumerateObject().Any():
                writer.WriteLine($"{indent}{name}: {{}}");
                break;
            case JsonValueKind.Object when value.EnumerateObject().All(p => IsScalar(p.Value)) && value.EnumerateObject().Count() <= 4:
                writer.WriteLine($"{indent}{name}: {string.Join(", ", value.EnumerateObject().Select(p => $"{p.Name} {Scalar(p.Value, p.Name)}"))}");
                break;
            case JsonValueKind.Object:
                writer.WriteLine($"{indent}{name}:");
                WriteObject(value, indent + "  ");
                break;
            case JsonValueKind.Array when value.GetArrayLength() == 0:
                writer.WriteLine($"{indent}{name}: []");
                break;
            case JsonValueKind.Array when value.EnumerateArray().All(IsScalar):
                writer.WriteLine($"{indent}{name}: {ScalarList(value)}");
                break;
            case JsonValueKind.Array:
                writer.WriteLine($"{indent}{name}: ({value.GetArrayLength()})");
                WriteValue(value, indent + "  ");
                break;
            default:
                writer.WriteLine($"{indent}{name}: {Scalar(value, name)}");
                break;
        }
    }

    private void WriteValue(JsonElement value, string indent)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            writer.WriteLine(indent + (value.ValueKind == JsonValueKind.Object ? "{...}" : Scalar(value, null)));
            return;
        }
        var items = value.EnumerateArray().ToList();
        if (items.All(i => i.ValueKind == JsonValueKind.Object) && TryWriteTable(items, indent))
        {
            return;
        }

        foreach (var item in items.Take(maxRows))
        {
            if (item.ValueKind == JsonValueKind.Object)
            {
                writer.WriteLine($"{indent}-");
                WriteObject(item, indent + "  ");
            }
            else
            {
                writer.WriteLine($"{indent}- {(IsScalar(item) ? Scalar(item, null) : ScalarList(item))}");
            }
        }
        if (items.Count > maxRows)
        {
            writer.WriteLine($"{indent}... {items.Count - maxRows} more");
        }
    }

    /// <summary>Objects as rows; nested arrays and objects become [N] and {...} cells.</summary>
    private bool TryWriteTable(List<JsonElement> rows, string indent)
    {
        var columns = rows.SelectMany(r => r.EnumerateObject().Select(p => p.Name)).Distinct().ToList();
        if (columns.Count > maxColumns)
        {
            return false;
        }

        var table = new Table(columns.ToArray());
        foreach (var row in rows.Take(maxRows))
        {
            table.Add(columns.Select(c => (object?)(row.TryGetProperty(c, out var v) ? Cell(v, c) : "")).ToArray());
        }
        table.WriteTo(writer, indent);
        if (rows.Count > maxRows)
        {
            writer.WriteLine($"{indent}... {rows.Count - maxRows} more");
        }

        return true;
    }

    private static string Cell(JsonElement value, string name) => value.ValueKind switch
    {
        JsonValueKind.Array => $"[{value.GetArrayLength()}]",
        JsonValueKind.Object => "{...}",
        JsonValueKind.String when value.GetString() is "" => "-",
        _ => Scalar(value, name),
    };

    private string ScalarList(JsonElement array)
    {
        var items = array.EnumerateArray().ToList();
        var shown = items.Take(maxScalarItems).Select(i => IsScalar(i) ? Scalar(i, null) : i.ValueKind == JsonValueKind.Array ? "[...]" : "{...}");
        var more = items.Count > maxScalarItems ? $", ... {items.Count - maxScalarItems} more" : "";
        return $"[{string.Join(", ", shown)}{more}]";
    }

    private static bool IsScalar(JsonElement e) => e.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array);

    private static string Scalar(JsonElement e, string? name) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString() ?? "",
        JsonValueKind.Null => "-",
        JsonValueKind.Number when name is not null && name.EndsWith("bytes", StringComparison.OrdinalIgnoreCase) && e.TryGetInt64(out var b) && b >= 1000
            => $"{b} ({Units.Bytes(b)})",
        _ => e.GetRawText(),
    };
}
