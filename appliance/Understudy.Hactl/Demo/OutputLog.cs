using System.Text;
using System.Text.RegularExpressions;

namespace Understudy.Hactl.Demo;

/// <summary>Reads a group's output.log (stdout and stderr of its applications).</summary>
public sealed partial class OutputLog(string path)
{
    public string Path { get; } = path;

    /// <summary>The current size, to read only what comes after it later.</summary>
    public long Length => File.Exists(Path) ? new FileInfo(Path).Length : 0;

    /// <summary>Complete lines written before <paramref name="end"/>.</summary>
    public IReadOnlyList<string> LinesBefore(long end)
    {
        if (!File.Exists(Path))
        {
            return [];
        }

        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var buffer = new byte[Math.Min(end, stream.Length)];
        stream.ReadExactly(buffer);
        var text = Encoding.UTF8.GetString(buffer);
        var last = text.LastIndexOf('\n');
        return last < 0 ? [] : text[..last].Split('\n');
    }

    /// <summary>Complete lines written since <paramref name="offset"/>.</summary>
    public IReadOnlyList<string> LinesSince(long offset = 0)
    {
        if (!File.Exists(Path))
        {
            return [];
        }

        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (offset > stream.Length)
        {
            offset = 0;
        }

        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var text = reader.ReadToEnd();
        var end = text.LastIndexOf('\n');
        return end < 0 ? [] : text[..end].Split('\n');
    }

    /// <summary>The N of every "count N" line.</summary>
    public static IReadOnlyList<long> Counts(IEnumerable<string> lines) =>
        lines.Select(l => CountLine().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToList();

    [GeneratedRegex(@"^count (\d+)\s*$")]
    private static partial Regex CountLine();
}
