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
    public static Func<ArgumentResult, int> AtLeast(string name, int minimum) => Between(name, minimum, int.MaxValue);

    /// <summary>A custom parser for an option named <paramref name="name"/> whose value lies from <paramref name="minimum"/> to <paramref name="maximum"/>.</summary>
    public static Func<ArgumentResult, int> Between(string name, int minimum, int maximum) => result =>
    {
        var token = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(" ", result.Tokens.Select(t => t.Value));
        if (int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum && value <= maximum)
        {
            return value;
        }
        result.AddError($"{name} '{token}' is not a whole number from {minimum} to {maximum}");
        return minimum;
    };
}
