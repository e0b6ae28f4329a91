namespace Understudy.GuestAgent.Foundation.Errors;

/// <summary>
/// What kind of failure an operation hit. The API layer turns it into a gRPC status code; the
/// domain code stays free of transport types.
/// </summary>
internal enum AgentErrorKind
{
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    Aborted,
    Unavailable,
    DeadlineExceeded,
    Internal,
}
