using System.CommandLine.Parsing;
using System.Globalization;

namespace Understudy.GuestAgent.CommandLine;

/// <summary>
/// Parses an option's value as a whole number of at least a minimum. A value that is not one
/// (letters, a sign, too many digits) is a usage error of one line, never an exception.
/// </summary>
public static class WholeNumber
{
    /// <summary>A custom parser for an option named <paramref name="name"/>.</summary>
    public static Func<ArgumentResult, int> AtLeast(string name, int minimum) => result =>
    {
        var token = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(" ", result.Tokens.Select(t => t.Value));
        if (int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum)
        {
            return value;
        }
        result.AddError($"{name} '{token}' is not a whole number from {minimum} to {int.MaxValue}");
        return minimum;
    };
}
