using System.Globalization;

namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>A line us-init writes on its stdout (docs/protocol.md, "Group init control").</summary>
internal abstract record InitMessage;

internal sealed record InitReady(int HostPid) : InitMessage;

internal sealed record InitLaunched(int Vpid) : InitMessage;

/// <summary>An agent attached on the control socket; <paramref name="ExitsLost"/> exits were not kept for it.</summary>
internal sealed record InitAttached(string Group, int ExitsLost) : InitMessage;

/// <summary>us-init reaped an application process.</summary>
internal sealed record InitExited(int Vpid, int ExitCode, int Signal) : InitMessage
{
    public string Describe() => Signal != 0 ? $"killed by signal {Signal}" : $"exit code {ExitCode}";

    /// <summary>How it ended, worded as faults word it: "was killed by signal 6", "exited with code 3".</summary>
    public string How => Signal != 0 ? $"was killed by signal {Signal}" : $"exited with code {ExitCode}";

    /// <summary>A crash: killed by a signal whose default action dumps core (SIGSEGV, SIGABRT, ...), not an exit or a kill.</summary>
    public bool Crashed => Signal is 3 or 4 or 5 or 6 or 7 or 8 or 11 or 24 or 25 or 31;
}

internal sealed record InitRestored(int Count) : InitMessage;

internal sealed record InitError(string Reason) : InitMessage;

internal static class InitMessageParser
{
    public static InitMessage? Parse(string line)
    {
        var tokens = TokenCodec.Split(line);
        if (tokens.Length == 0)
        {
            return null;
        }
        return tokens[0] switch
        {
            "READY" when tokens.Length == 2 && TryInt(tokens[1], out var pid) => new InitReady(pid),
            "ATTACHED" when tokens.Length == 3 && TryInt(tokens[2], out var lost) => new InitAttached(TokenCodec.Decode(tokens[1]), lost),
            "LAUNCHED" when tokens.Length == 2 && TryInt(tokens[1], out var vpid) => new InitLaunched(vpid),
            "EXITED" when tokens.Length == 4 && TryInt(tokens[1], out var vpid) && TryInt(tokens[2], out var code)
                && TryInt(tokens[3], out var signal) => new InitExited(vpid, code, signal),
            "RESTORED" when tokens.Length == 2 && TryInt(tokens[1], out var count) => new InitRestored(count),
            // The reason is the rest of the line; each token is decoded in case us-init encoded it.
            "ERROR" => new InitError(tokens.Length > 1 ? string.Join(' ', tokens.Skip(1).Select(TokenCodec.Decode)) : "unspecified error"),
            _ => null,
        };
    }

    private static bool TryInt(string token, out int value) =>
        int.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
}

/// <summary>Lines the agent writes on us-init's stdin.</summary>
internal static class InitCommands
{
    public const string Quit = "QUIT";

    public static string Launch(string app, string cwd, IReadOnlyDictionary<string, string> env, IReadOnlyList<string> argv) =>
        string.Join(' ', new[] { "LAUNCH", TokenCodec.Encode(app), TokenCodec.Encode(cwd), env.Count.ToString(CultureInfo.InvariantCulture) }
            .Concat(env.Select(e => TokenCodec.Encode($"{e.Key}={e.Value}")))
            .Concat(argv.Select(TokenCodec.Encode)));
}
