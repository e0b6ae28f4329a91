using Grpc.Core;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.Images;

namespace Understudy.GuestAgent.Api;

/// <summary>Turns the agent's exceptions into gRPC statuses with a one-line detail.</summary>
internal static class ErrorMapping
{
    public static RpcException ToRpcException(Exception exception) => exception switch
    {
        RpcException rpc => rpc,
        AgentException agent => Create(ToStatusCode(agent.Kind), agent.Message),
        CheckpointNotFoundException notFound => Create(StatusCode.NotFound, notFound.Message),
        ImageFormatException format => Create(StatusCode.FailedPrecondition, format.Message),
        ArgumentException argument => Create(StatusCode.InvalidArgument, argument.Message),
        OperationCanceledException => Create(StatusCode.Cancelled, "the call was cancelled"),
        UnauthorizedAccessException denied => Create(StatusCode.PermissionDenied, denied.Message),
        IOException io => Create(StatusCode.Unavailable, $"I/O error: {io.Message}"),
        _ => Create(StatusCode.Internal, $"internal error in the guest agent: {exception.Message}"),
    };

    public static bool IsUnexpected(Exception exception) =>
        exception is not (RpcException or AgentException or CheckpointNotFoundException or ImageFormatException
            or ArgumentException or OperationCanceledException or UnauthorizedAccessException or IOException);

    private static StatusCode ToStatusCode(AgentErrorKind kind) => kind switch
    {
        AgentErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        AgentErrorKind.NotFound => StatusCode.NotFound,
        AgentErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        AgentErrorKind.Aborted => StatusCode.Aborted,
        AgentErrorKind.Unavailable => StatusCode.Unavailable,
        AgentErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        _ => StatusCode.Internal,
    };

    private static RpcException Create(StatusCode code, string message) =>
        new(new Status(code, AgentException.OneLine(message)));
}
