using System.CommandLine;
using System.CommandLine.Help;
using Understudy.Hactl.Commands;

namespace Understudy.Hactl.Cli;

/// <summary>The command tree and the top-level parse/invoke policy.</summary>
public static class HactlCli
{
    public static RootCommand Build() => new(
        "hactl: checkpoint, restore and keep available groups of Linux processes with Understudy.\n" +
        $"Commands that talk to the agent find it through --agent unix:PATH, else $HACTL_AGENT, else unix:/run/understudy/agent.sock.")
    {
        AgentCommand.Create(),
        LaunchCommand.Create(),
        CheckpointCommand.Create(),
        StopCommand.Create(),
        RestoreCommand.Create(),
        StatusCommand.Create(),
        GroupCommand.Create(),
        EventsCommand.Create(),
        ImagesCommand.Create(),
        DoctorCommand.Create(),
        DemoCommand.Create(),
    };

    /// <summary>Parses and runs; a command line that does not parse is one line on stderr and exit code 2.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            Console.Error.WriteLine(UsageError(parse));
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration
        {
            ProcessTerminationTimeout = TimeSpan.FromSeconds(20),
            EnableDefaultExceptionHandler = false,
        });
    }

    private static string UsageError(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var messages = parse.Errors.Select(e => Rephrase(e.Message, parse, command)).Distinct().ToList();
        // "Unrecognized command" says more than "Required command was not provided".
        var specific = messages.Where(m => !m.StartsWith("Required command was not provided", StringComparison.Ordinal)).ToList();
        var why = string.Join(", ", (specific.Count > 0 ? specific : messages).Take(3));
        var path = CommandPath(command);
        return ErrorLine.Format($"invalid command line for '{path}'", why, $"see '{path} --help'");
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

    private static string CommandPath(Command command)
    {
        var names = new List<string>();
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            names.Add(c is RootCommand ? "hactl" : c.Name);
        }

        names.Reverse();
        return string.Join(' ', names);
    }
}
