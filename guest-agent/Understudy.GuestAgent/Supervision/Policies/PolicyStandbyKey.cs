using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// Sets a policy's <c>standby:</c> in its text, leaving the rest (comments, order, layout) as it
/// was: a group that moved to another node keeps its policy there, with the node it came from as
/// its standby (the roles swap).
/// </summary>
internal static class PolicyStandbyKey
{
    /// <param name="text">a policy that parses (<see cref="PolicyParser.Parse"/>)</param>
    /// <param name="source">how errors name the document</param>
    /// <exception cref="PolicyException">the text is not a policy, or the key cannot be set in it.</exception>
    public static ParsedPolicy With(string text, string source, string node)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new PolicyException(source, (int)e.Start.Line, (int)e.Start.Column, "", $"not valid YAML: {e.Message}");
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new PolicyException(source, 1, 1, "", "a policy is one YAML mapping");
        }
        var changed = Replace(text, root, node);
        var parsed = PolicyParser.Parse(changed, source);
        if (parsed.Policy.Standby != node)
        {
            throw new PolicyException(source, 1, 1, "standby", $"the standby cannot be set to {node} in this policy's text");
        }
        return parsed;
    }

    private static string Replace(string text, YamlMappingNode root, string node)
    {
        var standby = root.Children.FirstOrDefault(kv => kv.Key is YamlScalarNode { Value: "standby" });
        if (standby.Value is { } value)
        {
            var (start, end) = ((int)value.Start.Index, (int)value.End.Index);
            // "standby:" with no value: the new one needs a space after the colon.
            var replacement = start == end ? " " + node : node;
            return string.Concat(text.AsSpan(0, start), replacement, text.AsSpan(end));
        }
        var first = root.Children.First().Key;
        var at = (int)first.Start.Index;
        if (root.Style == YamlDotNet.Core.Events.MappingStyle.Flow)
        {
            return string.Concat(text.AsSpan(0, at), $"standby: {node}, ", text.AsSpan(at));
        }
        // A line of its own before the first key, at its indentation.
        var indentation = new string(' ', (int)first.Start.Column - 1);
        return string.Concat(text.AsSpan(0, at), $"standby: {node}\n{indentation}", text.AsSpan(at));
    }
}
