using System.Diagnostics.CodeAnalysis;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Connection;

/// <summary>Where the guest agent listens: <c>unix:PATH</c>.</summary>
public sealed record AgentEndpoint(string SocketPath)
{
    public const string EnvironmentVariable = "HACTL_AGENT";
    public const string DefaultSocket = "/run/understudy/agent.sock";
    public const string DefaultAddress = "unix:" + DefaultSocket;

    public string Address => UnixAddress.Scheme + SocketPath;

    public override string ToString() => Address;

    /// <summary>Parses <c>unix:PATH</c>; a relative PATH is taken from the current directory.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out AgentEndpoint? endpoint, [NotNullWhen(false)] out string? why)
    {
        if (UnixAddress.TryParse(text, out var socketPath, out why))
        {
            endpoint = new AgentEndpoint(socketPath);
            return true;
        }
        endpoint = null;
        return false;
    }

    /// <summary>--agent if given, else $HACTL_AGENT, else the default socket.</summary>
    public static AgentEndpoint Resolve(string? option)
    {
        if (option is not null)
        {
            return TryParse(option, out var fromOption, out var why)
                ? fromOption
                : throw HactlException.Usage($"--agent '{option}' is not an agent address", why, "pass --agent unix:PATH");
        }

        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            return TryParse(env, out var fromEnv, out var why)
                ? fromEnv
                : throw HactlException.Usage($"{EnvironmentVariable}='{env}' is not an agent address", why,
                    $"set it to unix:PATH (for example {DefaultAddress}) or pass --agent");
        }

        return new AgentEndpoint(DefaultSocket);
    }
}
