using System.Text;
using System.Text.RegularExpressions;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// STATE/groups/G/output.log, where the group's applications write their stdout and
/// stderr. Offsets are byte offsets; only complete lines (ending in '\n') are read.
/// A group restored on another node writes into that node's output.log from then on
/// (<see cref="FollowTo"/>): the log is then the lines of each file in the order the
/// group ran, and offsets count through them.
/// </summary>
public sealed class GroupLog
{
    /// <summary>A part of a file the group wrote into: from Start to End, or to its end while End is null.</summary>
    private sealed class Part(string path)
    {
        public string Path { get; } = path;
        public long Start { get; init; }
        public long? End { get; set; }
    }

    private readonly List<Part> _parts;

    public GroupLog(string path) => _parts = [new Part(path)];

    /// <summary>The file the group writes into now.</summary>
    public string Path => Parts()[^1].Path;

    /// <summary>
    /// The group is about to run on from <paramref name="path"/> (restored on another node, or moved
    /// there): what it writes there from now on follows what it wrote so far. Where it wrote until now
    /// may still grow until it runs there (a migration's rounds); <paramref name="path"/>, where it did
    /// not run meanwhile, ends for older parts here.
    /// </summary>
    public void FollowTo(string path)
    {
        lock (_parts)
        {
            foreach (var part in _parts.Where(p => p.Path == path && p.End is null))
            {
                part.End = FileLength(path);
            }
            _parts.Add(new Part(path) { Start = FileLength(path) });
        }
    }

    /// <summary>Current size in bytes (0 if the file does not exist yet).</summary>
    public long Length => Parts().Sum(p => PartLength(p));

    /// <summary>The complete lines that start at or after <paramref name="from"/> and end at or before <paramref name="to"/>.</summary>
    public List<string> Lines(long from = 0, long to = long.MaxValue)
    {
        var lines = new List<string>();
        long at = 0;
        foreach (var part in Parts())
        {
            var length = PartLength(part);
            if (from < at + length && to > at)
            {
                lines.AddRange(FileLines(part.Path, part.Start + Math.Max(0, from - at), part.Start + Math.Min(length, to - at)));
            }
            at += length;
        }
        return lines;
    }

    private List<Part> Parts()
    {
        lock (_parts)
        {
            return [.. _parts];
        }
    }

    private static long PartLength(Part part) => Math.Max(0, (part.End ?? FileLength(part.Path)) - part.Start);

    private static long FileLength(string path)
    {
        try { return new FileInfo(path).Exists ? new FileInfo(path).Length : 0; }
        catch (IOException) { return 0; }
    }

    private static List<string> FileLines(string path, long from, long to)
    {
        var lines = new List<string>();
        byte[] bytes;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
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
