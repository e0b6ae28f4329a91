namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// A policy file that cannot be applied: where (file, line, column, the key's path) and why,
/// in one line.
/// </summary>
internal sealed class PolicyException : Exception
{
    public PolicyException(string document, int line, int column, string path, string reason)
        : base(Format(document, line, column, path, reason))
    {
        Document = document;
        Line = line;
        Column = column;
        KeyPath = path;
        Reason = reason;
    }

    /// <summary>How the document is named, usually its file.</summary>
    public string Document { get; }
    public int Line { get; }
    public int Column { get; }

    /// <summary>The key in the document, like apps[1].ready.timeout; empty for the document itself.</summary>
    public string KeyPath { get; }

    public string Reason { get; }

    private static string Format(string document, int line, int column, string path, string reason)
    {
        var where = line > 0 ? $"{document} line {line}, column {column}" : document;
        return path.Length > 0 ? $"{where}: {path}: {reason}" : $"{where}: {reason}";
    }
}
