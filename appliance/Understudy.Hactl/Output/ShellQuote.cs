namespace Understudy.Hactl.Output;

/// <summary>Renders a command line the way a POSIX shell would accept it back.</summary>
public static class ShellQuote
{
    public static string Join(IEnumerable<string> argv) => string.Join(' ', argv.Select(Quote));

    public static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+%@".Contains(c))
            ? arg
            : "'" + arg.Replace("'", "'\\''") + "'";
}
