using System.Diagnostics.CodeAnalysis;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>The agent's address on the command line: <c>unix:PATH</c>.</summary>
public static class UnixAddress
{
    public const string Scheme = "unix:";

    /// <summary>Parses <c>unix:PATH</c>; a relative PATH is taken from the current directory.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out string? socketPath, [NotNullWhen(false)] out string? why)
    {
        socketPath = null;
        if (!text.StartsWith(Scheme, StringComparison.Ordinal))
        {
            why = "expected unix:PATH";
            return false;
        }
        var path = text[Scheme.Length..];
        if (path.Length == 0)
        {
            why = "the socket path after 'unix:' is empty";
            return false;
        }
        socketPath = Path.GetFullPath(path);
        why = null;
        return true;
    }
}
