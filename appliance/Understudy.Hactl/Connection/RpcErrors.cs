using System.Net.Sockets;
using Grpc.Core;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Connection;

/// <summary>Maps gRPC failures to the one-line error format.</summary>
public static class RpcErrors
{
    /// <summary>No agent there: the advice is to start one.</summary>
    public static HactlException Unreachable(AgentEndpoint endpoint, string why) =>
        new($"cannot reach the agent at {endpoint.Address}", why,
            $"start it with 'hactl agent run --listen {endpoint.Address} --state-dir DIR' or pass --agent");

    /// <summary>An agent is there, but its socket is its user's alone: starting another would not help.</summary>
    public static HactlException NotThisUsers(AgentEndpoint endpoint, string why) =>
        new($"cannot reach the agent at {endpoint.Address}", why, "run hactl as root or as the agent's user");

    private static HactlException Unreachable(AgentEndpoint endpoint, SocketError error) => error switch
    {
        SocketError.AccessDenied => NotThisUsers(endpoint, "permission denied: the socket belongs to another user"),
        _ => Unreachable(endpoint, DescribeSocketError(error)),
    };

    public static HactlException ToHactl(string what, AgentEndpoint endpoint, RpcException e)
    {
        if (FindSocketError(e) is { } socketError)
        {
            return Unreachable(endpoint, socketError);
        }

        var detail = string.IsNullOrWhiteSpace(e.Status.Detail) ? e.StatusCode.ToString() : ErrorLine.Clause(e.Status.Detail);

        // A status made by the client side (no connection, broken stream) carries the transport
        // exception; a status sent by the agent does not.
        if (e is { StatusCode: StatusCode.Unavailable, Status.DebugException: not null })
        {
            return Unreachable(endpoint, ErrorLine.Clause(e.Status.DebugException!.GetBaseException().Message));
        }

        return e.StatusCode switch
        {
            // The agent's messages already say what to do when they contain "; ".
            _ when detail.Contains("; ", StringComparison.Ordinal) => FromAgentMessage(what, detail),
            StatusCode.NotFound => new HactlException(what, detail, "check the names with 'hactl status' or 'hactl images list'"),
            StatusCode.InvalidArgument => new HactlException(what, detail, "check the arguments (see --help)"),
            StatusCode.AlreadyExists => new HactlException(what, detail, "choose another name or stop the existing one first"),
            StatusCode.FailedPrecondition or StatusCode.Aborted =>
                new HactlException(what, detail, "check the group with 'hactl status' and try again"),
            StatusCode.ResourceExhausted => new HactlException(what, detail, "free some space or memory and try again"),
            StatusCode.PermissionDenied or StatusCode.Unauthenticated =>
                new HactlException(what, detail, "run hactl as root or as the agent's user"),
            StatusCode.Unavailable => new HactlException(what, detail, "check the agent's log and the state directory's disk, then retry"),
            StatusCode.DeadlineExceeded => new HactlException(what, detail, "the agent or a member may be hung; check the agent's log and retry"),
            StatusCode.Unimplemented => new HactlException(what, "the agent does not support this call", "run an agent of the same version as hactl"),
            _ => new HactlException(what, detail, "see the agent's log for details"),
        };
    }

    private static HactlException FromAgentMessage(string what, string detail)
    {
        var (why, todo) = ErrorLine.SplitTodo(detail, "");
        return new HactlException(what, why, todo);
    }

    private static SocketError? FindSocketError(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode;
            }
        }
        return null;
    }

    private static string DescribeSocketError(SocketError error) => error switch
    {
        SocketError.AddressNotAvailable or SocketError.HostNotFound => "no such socket",
        SocketError.ConnectionRefused => "nothing is listening on the socket (is the agent stopped?)",
        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown =>
            "the agent closed the connection",
        SocketError.TimedOut => "the connection timed out",
        _ => $"socket error {error}",
    };
}
