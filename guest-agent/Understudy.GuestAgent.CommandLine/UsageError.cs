using System.CommandLine;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>The one line that reports a command line that does not parse (exit code 2).</summary>
public static class UsageError
{
    /// <summary>"PROGRAM: invalid command line for 'PROGRAM COMMAND': why; see 'PROGRAM COMMAND --help'".</summary>
    public static string Line(string program, ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var messages = parse.Errors.Select(e => Rephrase(e.Message, parse, command)).Distinct().ToList();
        // "Unrecognized command" says more than "Required command was not provided".
        var specific = messages.Where(m => !m.StartsWith("Required command was not provided", StringComparison.Ordinal)).ToList();
        var why = string.Join(", ", (specific.Count > 0 ? specific : messages).Take(3));
        var path = CommandPath(program, command);
        return ErrorLine.Format(program, $"invalid command line for '{path}'", why, $"see '{path} --help'");
    }

    /// <summary>Names the missing arguments instead of "Required argument missing for command".</summary>
    private static string Rephrase(string message, ParseResult parse, Command command)
    {
        if (!message.StartsWith("Required argument missing", StringComparison.Ordinal))
        {
            return ErrorLine.Clause(message);
        }

        var missing = command.Arguments
            .Where(a => a.Arity.MinimumNumberOfValues > 0 && (parse.GetResult(a) is not { } r || r.Tokens.Count == 0))
            .Select(a => a.Name)
            .ToList();
        return missing.Count == 0 ? ErrorLine.Clause(message) : $"missing {string.Join(" and ", missing)}";
    }

    private static string CommandPath(string program, Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            names.Add(c is RootCommand ? program : c.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }
}
