namespace Understudy.Hactl.Output;

/// <summary>A plain text table with left-aligned, space-separated columns.</summary>
public sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public Table Add(params object?[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"expected {headers.Length} cells, got {cells.Length}", nameof(cells));
        }

        _rows.Add(cells.Select(c => c?.ToString() ?? "-").ToArray());
        return this;
    }

    public int Count => _rows.Count;

    public void WriteTo(TextWriter writer, string indent = "")
    {
        var widths = headers.Select((h, i) => _rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        WriteRow(writer, indent, headers, widths);
        foreach (var row in _rows)
        {
            WriteRow(writer, indent, row, widths);
        }
    }

    private static void WriteRow(TextWriter writer, string indent, string[] cells, int[] widths)
    {
        var padded = cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(widths[i]));
        writer.WriteLine((indent + string.Join("  ", padded)).TrimEnd());
    }
}
