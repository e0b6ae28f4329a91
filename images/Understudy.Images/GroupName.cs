namespace Understudy.Images;

/// <summary>Group names become directory names, so they are limited to [A-Za-z0-9._-]{1,64} and may not start with '.'.</summary>
public static class GroupName
{
    public const int MaxLength = 64;

    /// <summary>Why <paramref name="group"/> is not a valid name, or null when it is.</summary>
    public static string? Problem(string? group)
    {
        if (string.IsNullOrEmpty(group))
        {
            return "group name is empty";
        }

        if (group.Length > MaxLength)
        {
            return $"group name \"{group[..MaxLength]}...\" is longer than {MaxLength} characters";
        }

        if (group[0] == '.')
        {
            return $"group name \"{group}\" starts with '.'";
        }

        if (!group.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            return $"group name \"{ImageLocation.OneLine(group)}\" has characters other than A-Z a-z 0-9 . _ -";
        }

        return null;
    }

    /// <exception cref="ArgumentException">The name is not valid; the message says why, on one line.</exception>
    public static void Validate(string group)
    {
        if (Problem(group) is { } problem)
        {
            throw new ArgumentException(problem, nameof(group));
        }
    }
}
