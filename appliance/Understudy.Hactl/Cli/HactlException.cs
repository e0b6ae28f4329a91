using Understudy.GuestAgent.CommandLine;

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
    public string ToLine() => ErrorLine.Format(HactlCli.ProgramName, What, Why, Todo);

    public static HactlException Usage(string what, string why, string todo) =>
        new(what, why, todo, ExitCodes.Usage);
}
