using System.Globalization;

namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>Turns a member protocol line into a <see cref="MemberMessage"/>.</summary>
internal static class MemberMessageParser
{
    public static bool TryParse(string line, out MemberMessage? message, out string error)
    {
        message = null;
        error = "";
        var tokens = TokenCodec.Split(line);
        if (tokens.Length == 0)
        {
            error = "empty line";
            return false;
        }

        var args = tokens.AsSpan(1);
        switch (tokens[0])
        {
            case "HELLO":
                return TryParseHello(args, out message, out error);
            case "FORK_BEGIN":
                message = new ForkBeginMessage();
                return true;
            case "FORK_END" when args.Length == 1 && TryInt(args[0], out var forkChild):
                message = new ForkEndMessage(forkChild);
                return true;
            case "EXEC_BEGIN":
                message = new ExecBeginMessage();
                return true;
            case "EXEC_FAIL":
                message = new ExecFailMessage();
                return true;
            case "SPAWN_BEGIN":
                message = new SpawnBeginMessage();
                return true;
            case "SPAWN_END" when args.Length == 1 && TryInt(args[0], out var spawnChild):
                message = new SpawnEndMessage(spawnChild);
                return true;
            case "FROZEN":
                // The thread count is informational; a missing one is tolerated. The survey's time
                // came later: an older interceptor sends none.
                message = new FrozenReply(
                    args.Length > 0 && TryInt(args[0], out var threads) ? threads : 0,
                    args.Length > 1 && TryLong(args[1], out var surveyMicros) && surveyMicros > 0 ? surveyMicros : 0);
                return true;
            // The kind came with incremental checkpoints; an interceptor from before sends two numbers.
            // A fourth names the process whose image an increment applies to, when not its own (fork).
            case "WRITTEN" when args.Length is >= 2 and <= 4 && TryLong(args[0], out var meta) && TryLong(args[1], out var pages)
                                && (args.Length == 2 || args[2] is "full" or "incremental")
                                && (args.Length < 4 || (args[2] is "incremental" && TryInt(args[3], out var baseVpid) && baseVpid > 0)):
                message = new WrittenReply(meta, pages, args.Length >= 3 ? args[2] : null, args.Length == 4 ? int.Parse(args[3]) : null);
                return true;
            case "FAILED":
                var reason = string.Join(' ', args.ToArray().Select(TokenCodec.Decode));
                message = new FailedReply(reason.Length > 0 ? reason : "no reason given");
                return true;
            case "RESUMED":
                message = new ResumedReply();
                return true;
            case "CAPTURED":
                message = new CapturedReply();
                return true;
            case "HELD":
                message = new HeldReply();
                return true;
            default:
                error = $"unknown or malformed message '{Truncate(line)}'";
                return false;
        }
    }

    private static bool TryParseHello(ReadOnlySpan<string> args, out MemberMessage? message, out string error)
    {
        message = null;
        // HELLO 1 <group> <app> <vpid> <vppid> <exec_count> <origin> [<tracker> [held]]
        if (args.Length is not (7 or 8 or 9) || (args.Length == 9 && args[8] != "held"))
        {
            error = args.Length == 9 ? $"HELLO has an unknown ninth argument '{args[8]}' (only 'held')" : $"HELLO needs 7 to 9 arguments, got {args.Length}";
            return false;
        }
        if (!TryInt(args[0], out var version) || !TryInt(args[3], out var vpid) || !TryInt(args[4], out var vppid)
            || !TryInt(args[5], out var execCount))
        {
            error = "HELLO has a malformed number";
            return false;
        }
        if (!RegistrationOrigins.TryParse(args[6], out var origin))
        {
            error = $"HELLO has an unknown origin '{args[6]}'";
            return false;
        }
        var tracker = args.Length >= 8 ? TokenCodec.Decode(args[7]) : "unknown";
        message = new HelloMessage(
            version, TokenCodec.Decode(args[1]), TokenCodec.Decode(args[2]), vpid, vppid, execCount, origin, tracker, Held: args.Length == 9);
        error = "";
        return true;
    }

    private static bool TryInt(string token, out int value) =>
        int.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    private static bool TryLong(string token, out long value) =>
        long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static string Truncate(string line) => line.Length <= 80 ? line : line[..80] + "...";
}
