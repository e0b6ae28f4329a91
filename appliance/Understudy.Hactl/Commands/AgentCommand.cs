using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Native;

namespace Understudy.Hactl.Commands;

/// <summary>
/// <c>hactl agent run</c>: the guest agent in the foreground. hactl checks the command line, then
/// becomes understudy-agent (execv): the agent keeps hactl's pid and terminal, gets its
/// signals and exits with its own code.
/// </summary>
public static class AgentCommand
{
    public static Command Create()
    {
        var agent = new Command("agent", "Run the guest agent of this node");
        agent.Add(CreateRun());
        return agent;
    }

    private static Command CreateRun()
    {
        var options = new AgentRunOptions(CommonOptions.NativeDir());
        var run = new Command("run", "Run the guest agent in the foreground until SIGINT or SIGTERM");
        foreach (var option in options.All)
        {
            run.Add(option);
        }

        options.AddPeerValidators(run);

        run.SetHandler((parse, _) =>
        {
            var settings = options.Read(parse);
            var program = NativeLayout.Agent(settings.NativeDir);
            const string what = "cannot start the agent";
            if (!File.Exists(program))
            {
                throw new HactlException(what, $"{program} does not exist",
                    $"build it with ./build.sh, or point --native-dir or ${NativeLayout.NativeDirVariable} at the directory that holds it");
            }

            ProcessImage.Replace(program, settings.ToArguments(), what);
            return Task.FromResult(ExitCodes.Failure);
        });
        return run;
    }
}
