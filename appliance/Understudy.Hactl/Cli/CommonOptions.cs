using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Connection;

namespace Understudy.Hactl.Cli;

/// <summary>Factories for the options that several commands share (one instance per command).</summary>
public static class CommonOptions
{
    public static Option<bool> Json() => new("--json")
    {
        Description = "Print one JSON document (camelCase) on stdout instead of text",
    };

    public static Option<string?> Agent()
    {
        var option = new Option<string?>("--agent")
        {
            Description = $"Agent address unix:PATH (default: ${AgentEndpoint.EnvironmentVariable}, else {AgentEndpoint.DefaultAddress})",
            HelpName = "unix:PATH",
        };
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string?>();
            if (value is not null && !AgentEndpoint.TryParse(value, out _, out var why))
            {
                result.AddError($"--agent '{value}' is not an agent address: {why}");
            }
        });
        return option;
    }

    public static Option<string?> NativeDir() => AgentRunOptions.NativeDirOption("hactl's own directory");

    public static Argument<string> Group(string description = "Name of the group") => new("GROUP")
    {
        Description = description,
    };
}
