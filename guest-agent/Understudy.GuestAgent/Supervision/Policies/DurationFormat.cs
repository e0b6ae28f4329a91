using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>Durations as policies write them: a number and a unit, possibly several (1m30s).</summary>
internal static partial class DurationFormat
{
    public const string Hint = "write a number with a unit, like 500ms, 10s, 5m, 1h or 1m30s";

    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var match = Pattern().Match(text.Trim());
        if (!match.Success)
        {
            return false;
        }
        var total = 0.0;
        var parts = match.Groups["part"].Captures;
        var numbers = match.Groups["n"].Captures;
        var units = match.Groups["unit"].Captures;
        for (var i = 0; i < parts.Count; i++)
        {
            var value = double.Parse(numbers[i].Value, CultureInfo.InvariantCulture);
            total += units[i].Value switch
            {
                "ms" => value,
                "s" => value * 1000,
                "m" => value * 60_000,
                _ => value * 3_600_000,
            };
        }
        if (total > TimeSpan.FromDays(365).TotalMilliseconds)
        {
            return false;
        }
        duration = TimeSpan.FromMilliseconds(Math.Round(total));
        return true;
    }

    /// <summary>The shortest policy spelling: 1h, 1m30s, 2s, 250ms, 1s500ms.</summary>
    public static string Format(TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero)
        {
            return "0s";
        }
        var text = new StringBuilder();
        Append(text, (long)duration.TotalHours, "h");
        Append(text, duration.Minutes, "m");
        Append(text, duration.Seconds, "s");
        Append(text, duration.Milliseconds, "ms");
        return text.ToString();
    }

    private static void Append(StringBuilder text, long value, string unit)
    {
        if (value != 0)
        {
            text.Append(value.ToString(CultureInfo.InvariantCulture)).Append(unit);
        }
    }

    [GeneratedRegex(@"^(?<part>(?<n>\d+(?:\.\d+)?)(?<unit>ms|s|m|h))+$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
