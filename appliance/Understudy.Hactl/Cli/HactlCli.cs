using System.CommandLine;
using System.CommandLine.Help;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Commands;

namespace Understudy.Hactl.Cli;

/// <summary>The command tree and the top-level parse/invoke policy.</summary>
public static class HactlCli
{
    /// <summary>The name that starts hactl's error lines.</summary>
    public const string ProgramName = "hactl";

    public static RootCommand Build() => new(
        "hactl: checkpoint, restore and keep available groups of Linux processes with Understudy.\n" +
        $"Commands that talk to the agent find it through --agent unix:PATH, else $HACTL_AGENT, else unix:/run/understudy/agent.sock.")
    {
        AgentCommand.Create(),
        LaunchCommand.Create(),
        CheckpointCommand.Create(),
        StopCommand.Create(),
        RestoreCommand.Create(),
        MigrateCommand.Create(),
        StatusCommand.Create(),
        GroupCommand.Create(),
        EventsCommand.Create(),
        ImagesCommand.Create(),
        DoctorCommand.Create(),
        DemoCommand.Create(),
        LabCommand.Create(),
        ClusterCommand.Create(),
    };

    /// <summary>Parses and runs; a command line that does not parse is one line on stderr and exit code 2.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not HelpAction)
        {
            Console.Error.WriteLine(UsageError.Line(ProgramName, parse));
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration
        {
            ProcessTerminationTimeout = TimeSpan.FromSeconds(20),
            EnableDefaultExceptionHandler = false,
        });
    }
}
