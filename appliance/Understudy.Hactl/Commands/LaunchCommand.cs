using System.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Native;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl launch GROUP [--app NAME] [--cwd DIR] -- CMD ARGS...</c></summary>
public static class LaunchCommand
{
    public static Command Create()
    {
        var group = CommonOptions.Group("Group to join; it is created if new");
        var command = new Argument<string[]>("CMD")
        {
            Description = "Program and its arguments (put them after --); a bare name is looked up in PATH",
            Arity = ArgumentArity.OneOrMore,
        };
        var app = new Option<string?>("--app") { Description = "Application name inside the group (default: the program's file name)", HelpName = "NAME" };
        var cwd = new Option<string?>("--cwd") { Description = "Working directory of the application (default: the current directory)", HelpName = "DIR" };
        var env = new Option<string[]>("--env")
        {
            Description = "Extra environment variable for the application (repeatable)",
            HelpName = "NAME=VALUE",
            Arity = ArgumentArity.ZeroOrMore,
        };
        env.Validators.Add(result =>
        {
            foreach (var item in result.GetValueOrDefault<string[]>() ?? [])
            {
                if (item.IndexOf('=') <= 0)
                {
                    result.AddError($"--env '{item}' is not NAME=VALUE");
                }
            }
        });
        var standby = new Option<string?>("--standby")
        {
            Description = "Stream every checkpoint of the group to this peer node's agent (one of the agent's --peer nodes); for a group without a policy",
            HelpName = "NODE",
        };
        var agent = CommonOptions.Agent();
        var json = CommonOptions.Json();

        var launch = new Command("launch",
            "Start CMD as a new member of GROUP (created if new), under the interceptor; put CMD and its arguments after --")
        {
            group, command, app, cwd, env, standby, agent, json,
        };

        launch.SetHandler(async (parse, ct) =>
        {
            var groupName = parse.GetRequiredValue(group);
            var argv = parse.GetRequiredValue(command);
            var workDir = Path.GetFullPath(parse.GetValue(cwd) ?? Environment.CurrentDirectory);
            if (!Directory.Exists(workDir))
            {
                throw new HactlException($"cannot launch '{argv[0]}' in group {groupName}", $"working directory {workDir} does not exist", "pass an existing directory with --cwd");
            }

            argv[0] = ProgramResolver.Resolve(argv[0], workDir);
            var request = new LaunchRequest { Group = groupName, App = parse.GetValue(app) ?? "", Cwd = workDir, Standby = parse.GetValue(standby) ?? "" };
            request.Argv.AddRange(argv);
            foreach (var item in parse.GetValue(env) ?? [])
            {
                var eq = item.IndexOf('=');
                request.Env[item[..eq]] = item[(eq + 1)..];
            }

            using var client = AgentClient.Connect(parse.GetValue(agent));
            var reply = await client.CallAsync($"cannot launch '{Path.GetFileName(argv[0])}' in group {groupName}",
                api => api.LaunchAsync(request, cancellationToken: ct).ResponseAsync, ct);
            var result = LaunchResult.From(reply);

            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.LaunchResult);
            }
            else
            {
                Console.WriteLine($"launched {result.App} in group {result.Group}: pid {result.Pid} (host pid {result.HostPid})");
            }

            return ExitCodes.Ok;
        });
        return launch;
    }
}
