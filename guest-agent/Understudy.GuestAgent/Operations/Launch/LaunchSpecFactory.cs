using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Operations.Launch;

/// <summary>Checks a launch request and fills in its defaults.</summary>
internal static class LaunchSpecFactory
{
    public static LaunchSpec Create(
        string group, string? app, IReadOnlyList<string> argv, string? cwd, IReadOnlyDictionary<string, string> env)
    {
        GroupNames.Require(group);
        if (argv.Count == 0 || string.IsNullOrEmpty(argv[0]))
        {
            throw AgentException.InvalidArgument("launch needs a command: hactl launch GROUP -- COMMAND [ARGS...]");
        }
        foreach (var variable in env.Keys)
        {
            if (variable.Length == 0 || variable.Contains('=') || variable.Contains('\0'))
            {
                throw AgentException.InvalidArgument($"launch: '{variable}' is not a valid environment variable name; use NAME=VALUE with a name without '='");
            }
        }
        var workingDirectory = string.IsNullOrEmpty(cwd) ? Environment.CurrentDirectory : cwd;
        if (!Path.IsPathFullyQualified(workingDirectory) || !Directory.Exists(workingDirectory))
        {
            throw AgentException.InvalidArgument($"launch: working directory {workingDirectory} does not exist (an absolute path is needed)");
        }
        var name = string.IsNullOrEmpty(app) ? Path.GetFileName(argv[0]) : app;
        if (string.IsNullOrEmpty(name))
        {
            throw AgentException.InvalidArgument($"launch: cannot name the application after '{argv[0]}'; pass --app NAME");
        }
        return new LaunchSpec(group, name, argv.ToList(), workingDirectory, new Dictionary<string, string>(env));
    }
}
