namespace Understudy.GuestAgent.Foundation.Errors;

/// <summary>Formats timeouts for error messages ("10 s", "500 ms").</summary>
internal static class Durations
{
    public static string Describe(TimeSpan span) =>
        span.TotalSeconds >= 1 && span.Milliseconds == 0
            ? $"{(long)span.TotalSeconds} s"
            : $"{(long)span.TotalMilliseconds} ms";
}
