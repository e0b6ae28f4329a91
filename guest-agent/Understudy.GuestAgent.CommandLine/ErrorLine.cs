namespace Understudy.GuestAgent.CommandLine;

/// <summary>
/// The one line on stderr by which hactl and understudy-agent report a failure:
/// <c>PROGRAM: &lt;what failed&gt;: &lt;why&gt;; &lt;what to do&gt;</c>.
/// </summary>
public static class ErrorLine
{
    public static string Format(string program, string what, string why, string? todo)
    {
        var line = string.IsNullOrWhiteSpace(todo)
            ? $"{program}: {what}: {why}"
            : $"{program}: {what}: {why}; {todo}";
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
