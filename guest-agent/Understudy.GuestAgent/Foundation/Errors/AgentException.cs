namespace Understudy.GuestAgent.Foundation.Errors;

/// <summary>
/// A failure the operator should see: the message is one line that says what failed, why and
/// what to do.
/// </summary>
internal sealed class AgentException : Exception
{
    public AgentException(AgentErrorKind kind, string message, Exception? inner = null)
        : base(OneLine(message), inner)
    {
        Kind = kind;
    }

    public AgentErrorKind Kind { get; }

    public static AgentException InvalidArgument(string message) => new(AgentErrorKind.InvalidArgument, message);
    public static AgentException NotFound(string message) => new(AgentErrorKind.NotFound, message);
    public static AgentException FailedPrecondition(string message, Exception? inner = null) =>
        new(AgentErrorKind.FailedPrecondition, message, inner);
    public static AgentException Aborted(string message, Exception? inner = null) => new(AgentErrorKind.Aborted, message, inner);
    public static AgentException Unavailable(string message, Exception? inner = null) =>
        new(AgentErrorKind.Unavailable, message, inner);

    /// <summary>Errors travel as single lines (gRPC detail, hactl's stderr), so fold any line breaks.</summary>
    public static string OneLine(string message) =>
        message.ReplaceLineEndings(" ").Trim();
}
