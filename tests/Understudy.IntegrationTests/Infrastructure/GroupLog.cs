using System.Text;
using System.Text.RegularExpressions;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// STATE/groups/G/output.log, where the group's applications write their stdout and
/// stderr. Offsets are byte offsets; only complete lines (ending in '\n') are read.
/// </summary>
public sealed class GroupLog
{
    public GroupLog(string path) => Path = path;

    public string Path { get; }

    /// <summary>Current size in bytes (0 if the file does not exist yet).</summary>
    public long Length
    {
        get
        {
            try { return new FileInfo(Path).Exists ? new FileInfo(Path).Length : 0; }
            catch (IOException) { return 0; }
        }
    }

    /// <summary>The complete lines that start at or after <paramref name="from"/> and end at or before <paramref name="to"/>.</summary>
    public List<string> Lines(long from = 0, long to = long.MaxValue)
    {
        var lines = new List<string>();
        byte[] bytes;
        try
        {
            using var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long end = Math.Min(fs.Length, to);
            if (from >= end)
            {
                return lines;
            }

            fs.Position = from;
            bytes = new byte[end - from];
            int got = 0;
            while (got < bytes.Length)
            {
                int n = fs.Read(bytes, got, bytes.Length - got);
                if (n == 0)
                {
                    break;
                }

                got += n;
            }
            if (got < bytes.Length)
            {
                System.Array.Resize(ref bytes, got);
            }
        }
        catch (FileNotFoundException) { return lines; }
        catch (DirectoryNotFoundException) { return lines; }
        int start = 0;
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != (byte)'\n')
            {
                continue;
            }

            lines.Add(Encoding.UTF8.GetString(bytes, start, i - start));
            start = i + 1;
        }
        return lines;
    }

    private static readonly Dictionary<string, Regex> Patterns = new();

    /// <summary>Matches "TAG N" at the start of a line, e.g. tag "count" or "parent count".</summary>
    public static Regex CountPattern(string tag)
    {
        lock (Patterns)
        {
            if (!Patterns.TryGetValue(tag, out var re))
            {
                Patterns[tag] = re = new Regex("^" + Regex.Escape(tag) + @" (\d+)(?: |$)", RegexOptions.CultureInvariant);
            }

            return re;
        }
    }

    /// <summary>The values of the "TAG N" lines in [from, to), in file order.</summary>
    public List<long> Counts(string tag, long from = 0, long to = long.MaxValue)
    {
        var re = CountPattern(tag);
        var values = new List<long>();
        foreach (var line in Lines(from, to))
        {
            var m = re.Match(line);
            if (m.Success)
            {
                values.Add(long.Parse(m.Groups[1].Value));
            }
        }
        return values;
    }

    /// <summary>The last "TAG N" value in [0, to), or null.</summary>
    public long? LastCount(string tag, long to = long.MaxValue)
    {
        var c = Counts(tag, 0, to);
        return c.Count > 0 ? c[^1] : null;
    }

    /// <summary>The first line starting with FAIL at or after <paramref name="from"/>, or null.</summary>
    public string? FirstFail(long from = 0) => Lines(from).FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal));

    /// <summary>Lines starting with "VERIFY OK ROLE" at or after <paramref name="from"/>.</summary>
    public List<string> Verified(string role, long from) =>
        Lines(from).Where(l => l.StartsWith("VERIFY OK " + role + " ", StringComparison.Ordinal)
                               || l == "VERIFY OK " + role).ToList();

    public string Tail(int n)
    {
        var lines = Lines(Math.Max(0, Length - 64 * 1024));
        return string.Join('\n', lines.Skip(Math.Max(0, lines.Count - n)));
    }
}
