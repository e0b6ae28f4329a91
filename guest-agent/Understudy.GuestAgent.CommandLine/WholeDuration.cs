using System.CommandLine.Parsing;
using System.Globalization;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>
/// Parses an option's value as a duration: a whole number and one unit (<c>500ms</c>, <c>10s</c>,
/// <c>2m</c>) from a minimum to a maximum. Anything else is a usage error of one line.
/// </summary>
public static class WholeDuration
{
    /// <summary>The shortest spelling this parser reads back: 2m, 10s, 1500ms.</summary>
    public static string Format(TimeSpan duration) =>
        duration.Ticks % TimeSpan.TicksPerMinute == 0 ? $"{(long)duration.TotalMinutes}m"
        : duration.Ticks % TimeSpan.TicksPerSecond == 0 ? $"{(long)duration.TotalSeconds}s"
        : $"{(long)duration.TotalMilliseconds}ms";

    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var (digits, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 1L)
            : text.EndsWith('s') ? (text[..^1], 1000L)
            : text.EndsWith('m') ? (text[..^1], 60_000L)
            : ("", 0L);
        if (unit == 0 || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > 1_000_000_000)
        {
            return false;
        }
        duration = TimeSpan.FromMilliseconds(value * unit);
        return true;
    }

    /// <summary>A custom parser for an option named <paramref name="name"/>.</summary>
    public static Func<ArgumentResult, TimeSpan> Between(string name, TimeSpan minimum, TimeSpan maximum) => result =>
    {
        var token = string.Join(" ", result.Tokens.Select(t => t.Value));
        if (TryParse(token, out var value) && value >= minimum && value <= maximum)
        {
            return value;
        }
        result.AddError($"{name} '{token}' is not a duration from {Format(minimum)} to {Format(maximum)}; write a whole number and a unit, like 500ms, 10s or 2m");
        return minimum;
    };
}
