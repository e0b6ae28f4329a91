namespace Understudy.Hactl.Cli;

/// <summary>Exit codes of every hactl command.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
}

/// <summary>
/// A failure the user can act on. It is printed as one line on stderr:
/// <c>hactl: &lt;what failed&gt;: &lt;why&gt;; &lt;what to do&gt;</c>.
/// </summary>
public sealed class HactlException(string what, string why, string todo, int exitCode = ExitCodes.Failure)
    : Exception($"{what}: {why}; {todo}")
{
    public string What { get; } = what;
    public string Why { get; } = why;
    public string Todo { get; } = todo;
    public int ExitCode { get; } = exitCode;

    /// <summary>The single stderr line for this error.</summary>
    public string ToLine() => ErrorLine.Format(What, Why, Todo);

    public static HactlException Usage(string what, string why, string todo) =>
        new(what, why, todo, ExitCodes.Usage);
}

public static class ErrorLine
{
    public static string Format(string what, string why, string? todo)
    {
        var line = string.IsNullOrWhiteSpace(todo)
            ? $"hactl: {what}: {why}"
            : $"hactl: {what}: {why}; {todo}";
        return OneLine(line);
    }

    /// <summary>Collapses any line breaks so that an error is always exactly one line.</summary>
    public static string OneLine(string text)
    {
        var parts = text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return string.Join(' ', parts);
    }

    /// <summary>
    /// Splits "why; what to do" as other components write their one-line messages; a message
    /// without "; " gets <paramref name="fallbackTodo"/>.
    /// </summary>
    public static (string Why, string Todo) SplitTodo(string message, string fallbackTodo)
    {
        var text = Clause(message);
        var at = text.LastIndexOf("; ", StringComparison.Ordinal);
        return at <= 0 ? (text, fallbackTodo) : (text[..at], text[(at + 2)..]);
    }

    /// <summary>Trims a sentence's final period, so that it reads well inside a longer line.</summary>
    public static string Clause(string text) => OneLine(text).TrimEnd().TrimEnd('.');
}
