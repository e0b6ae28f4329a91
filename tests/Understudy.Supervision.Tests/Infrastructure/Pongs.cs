using Xunit.Sdk;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>What wl_service's clients print: "LABEL count N pongs P reconnects R".</summary>
public static class Pongs
{
    /// <summary>
    /// Waits until a client's pongs grow past those of its first line at or after
    /// <paramref name="from"/> while it never reconnects: it is still answered on the connection
    /// it had (a restored group keeps the TCP connections between its members).
    /// </summary>
    public static async Task WaitForMoreOnTheSameConnection(GroupLog log, string label, long from,
        Func<Func<Task<bool>>, string, Task> waitUntil)
    {
        var prefix = $"{label} count ";
        List<(long Pongs, long Reconnects)> Lines() => log.Lines(from)
            .Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(Parse)
            .ToList();

        await waitUntil(() => Task.FromResult(Lines() is { Count: > 1 } l && l[^1].Pongs > l[0].Pongs),
            $"{label} answered again after the restore");
        var lines = Lines();
        if (lines.Any(l => l.Reconnects != lines[0].Reconnects))
        {
            throw new XunitException($"{label} had to connect again after the restore: its connection was not kept");
        }
    }

    private static (long Pongs, long Reconnects) Parse(string line)
    {
        var words = line.Split(' ');
        int pongs = Array.IndexOf(words, "pongs"), reconnects = Array.IndexOf(words, "reconnects");
        return (long.Parse(words[pongs + 1]), long.Parse(words[reconnects + 1]));
    }
}
