using System.Globalization;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// The checks of a policy against this node, made when it is applied: programs exist, working
/// directories exist, users can be served, and the image directory is one the agent may write
/// to (<see cref="ImagesPathRules"/>) and agrees with the images the group already has. Errors point at the policy's line.
/// </summary>
internal sealed class PolicyEnvironment
{
    private readonly StatePaths _paths;

    public PolicyEnvironment(StatePaths paths)
    {
        _paths = paths;
    }

    /// <exception cref="PolicyException">something the policy names is not usable here.</exception>
    public void Check(ParsedPolicy parsed)
    {
        var policy = parsed.Policy;
        var marks = parsed.Marks;
        foreach (var app in policy.Apps)
        {
            var at = parsed.AppPaths[app.Name];
            if (ProgramProblem(app.Command) is { } problem)
            {
                throw marks.ErrorAt($"{at}.command", problem);
            }
            if (!Directory.Exists(app.Cwd))
            {
                throw marks.ErrorAt($"{at}.cwd", $"directory {app.Cwd} does not exist");
            }
            if (app.User is { } user && UserProblem(user) is { } userProblem)
            {
                throw marks.ErrorAt($"{at}.user", userProblem);
            }
            var probes = app.Health.Select((h, k) => (h.Probe, Path: $"{at}.health[{k}].command"));
            if (app.Ready is { } ready)
            {
                probes = probes.Prepend((ready.Probe, $"{at}.ready.command"));
            }
            foreach (var (probe, path) in probes)
            {
                if (probe is CommandProbeSpec command && ProgramProblem(command.Argv[0]) is { } probeProblem)
                {
                    throw marks.ErrorAt(path, probeProblem);
                }
            }
        }
        if (policy.ImagesPath is { } imagesPath && ImagesPathRules.Problem(_paths, policy.Group, imagesPath) is { } refused)
        {
            throw marks.ErrorAt("images.path", refused);
        }
        if (ImagesProblem(policy) is { } imagesProblem)
        {
            throw marks.ErrorAt("images.path", imagesProblem);
        }
    }

    private static string? ProgramProblem(string program)
    {
        if (Path.IsPathFullyQualified(program))
        {
            if (!File.Exists(program))
            {
                return $"program {program} does not exist";
            }
            return (File.GetUnixFileMode(program) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0
                ? $"program {program} is not executable"
                : null;
        }
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, program)));
        return found ? null : $"program '{program}' is not in the agent's PATH; give its absolute path";
    }

    /// <summary>
    /// Members talk to the agent over its private member socket, which admits only root and the
    /// agent's own user (docs/protocol.md), so applications cannot run as anyone else yet.
    /// </summary>
    private static string? UserProblem(string user)
    {
        var uid = uint.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out var numeric) ? numeric : LookUpUid(user);
        if (uid is null)
        {
            return $"no user named '{user}' on this node";
        }
        return uid == 0 || uid == Libc.EffectiveUserId
            ? null
            : $"running applications as '{user}' is not supported yet: the member socket admits only root and the agent's own user, so use one of those";
    }

    private static uint? LookUpUid(string user)
    {
        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var fields = line.Split(':');
            if (fields.Length > 2 && fields[0] == user && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
            {
                return uid;
            }
        }
        return null;
    }

    /// <summary>A group's images cannot move once it has some: the old ones would be lost to it.</summary>
    private string? ImagesProblem(GroupPolicy policy)
    {
        var current = GroupImageDirectory.CurrentTarget(_paths, policy.Group);
        if (current is null || current == (policy.ImagesPath ?? _paths.GroupDir(policy.Group)))
        {
            return null;
        }
        return policy.ImagesPath is null
            ? $"group {policy.Group} keeps its images in {current}: set images.path to that directory (images are never moved)"
            : $"group {policy.Group} already keeps its images in {current}: moving them to {policy.ImagesPath} is not supported, stop the group and move the directory by hand first";
    }
}
