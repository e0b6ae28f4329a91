using Understudy.Images;

namespace Understudy.GuestAgent.Foundation.Errors;

/// <summary>
/// Group names become directory names under STATE/groups and tokens of both protocols; the
/// image library owns the rule (<see cref="GroupName"/>), this turns it into agent errors.
/// </summary>
internal static class GroupNames
{
    public static bool IsValid(string? name) => GroupName.Problem(name) is null;

    /// <summary>Throws an InvalidArgument error unless <paramref name="name"/> is a valid group name.</summary>
    public static string Require(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw AgentException.InvalidArgument("a group name is required");
        }
        if (GroupName.Problem(name) is { } problem)
        {
            throw AgentException.InvalidArgument(problem);
        }
        return name;
    }
}
