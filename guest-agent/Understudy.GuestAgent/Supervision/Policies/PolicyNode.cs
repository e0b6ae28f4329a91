using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>Where every key of a policy document is, so that any later check can point at its line.</summary>
internal sealed class PolicyMarks(string source)
{
    private readonly Dictionary<string, Mark> _marks = new(StringComparer.Ordinal);

    public string Source { get; } = source;

    public void Record(string path, Mark mark) => _marks.TryAdd(path, mark);

    /// <summary>An error at <paramref name="path"/>, or at its nearest recorded parent.</summary>
    public PolicyException ErrorAt(string path, string reason)
    {
        for (var key = path; ; key = Parent(key))
        {
            if (_marks.TryGetValue(key, out var mark))
            {
                return new PolicyException(Source, (int)mark.Line, (int)mark.Column, path, reason);
            }
            if (key.Length == 0)
            {
                return new PolicyException(Source, 0, 0, path, reason);
            }
        }
    }

    private static string Parent(string path)
    {
        var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
        return cut <= 0 ? "" : path[..cut];
    }
}

/// <summary>
/// A node of a policy document with its path (apps[1].ready.timeout), read strictly: every
/// accessor checks the type and fails with the node's line and a reason.
/// </summary>
internal sealed class PolicyNode
{
    private readonly YamlNode _node;
    private readonly PolicyMarks _marks;

    public PolicyNode(YamlNode node, string path, PolicyMarks marks)
    {
        _node = node;
        _marks = marks;
        Path = path;
        marks.Record(path, node.Start);
    }

    public string Path { get; }

    public PolicyException Error(string reason) =>
        new(_marks.Source, (int)_node.Start.Line, (int)_node.Start.Column, Path, reason);

    /// <summary>Whether the value is empty (<c>key:</c>, <c>~</c> or <c>null</c>).</summary>
    public bool IsNull => _node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "~" or "null" };

    /// <summary>Whether the value is a single (non-empty) value rather than a list or mapping.</summary>
    public bool IsScalar => _node is YamlScalarNode && !IsNull;

    /// <summary>A mapping whose keys are all among <paramref name="allowedKeys"/>.</summary>
    public PolicyMapping Mapping(params string[] allowedKeys) => ReadMapping(allowedKeys);

    /// <summary>A mapping with keys of any name (environment variables).</summary>
    public PolicyMapping AnyMapping() => ReadMapping(null);

    private PolicyMapping ReadMapping(string[]? allowedKeys)
    {
        if (_node is not YamlMappingNode mapping)
        {
            throw Error(allowedKeys is null
                ? $"expected a mapping of NAME: VALUE, found {Describe(_node)}"
                : $"expected a mapping of keys ({string.Join(", ", allowedKeys)}), found {Describe(_node)}");
        }
        var entries = new List<(string Key, PolicyNode Value)>();
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { Length: > 0 } key })
            {
                throw new PolicyException(_marks.Source, (int)keyNode.Start.Line, (int)keyNode.Start.Column, Path, "keys must be plain names");
            }
            var childPath = Path.Length == 0 ? key : $"{Path}.{key}";
            if (allowedKeys is not null && !allowedKeys.Contains(key, StringComparer.Ordinal))
            {
                var suggestion = Suggest(key, allowedKeys);
                throw new PolicyException(
                    _marks.Source, (int)keyNode.Start.Line, (int)keyNode.Start.Column, childPath,
                    $"unknown key '{key}'{suggestion}, the keys here are: {string.Join(", ", allowedKeys)}");
            }
            entries.Add((key, new PolicyNode(valueNode, childPath, _marks)));
        }
        return new PolicyMapping(this, entries);
    }

    public IReadOnlyList<PolicyNode> Sequence()
    {
        if (_node is not YamlSequenceNode sequence)
        {
            throw Error($"expected a list, found {Describe(_node)}");
        }
        return sequence.Children.Select((child, i) => new PolicyNode(child, $"{Path}[{i}]", _marks)).ToList();
    }

    public string String()
    {
        if (_node is not YamlScalarNode scalar || IsNull)
        {
            throw Error(IsNull ? "a value is required" : $"expected a single value, found {Describe(_node)}");
        }
        return scalar.Value ?? "";
    }

    public int Int(int min, int max)
    {
        var text = String();
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            throw Error($"'{text}' is not a whole number");
        }
        if (value < min || value > max)
        {
            throw Error(max == int.MaxValue ? $"{value} is too small: the least is {min}" : $"{value} is out of range: it must be from {min} to {max}");
        }
        return value;
    }

    /// <summary>A value that must be one of <paramref name="choices"/>.</summary>
    public string OneOf(IReadOnlyList<string> choices)
    {
        var text = String();
        return choices.Contains(text, StringComparer.Ordinal)
            ? text
            : throw Error($"'{text}' is not one of: {string.Join(", ", choices)}");
    }

    public bool Bool()
    {
        return String() switch
        {
            "true" => true,
            "false" => false,
            var other => throw Error($"'{other}' is not true or false"),
        };
    }

    public TimeSpan Duration(TimeSpan least)
    {
        var text = String();
        if (!DurationFormat.TryParse(text, out var value))
        {
            throw Error(text.All(c => char.IsAsciiDigit(c) || c == '.')
                ? $"'{text}' has no unit: {DurationFormat.Hint}"
                : $"'{text}' is not a duration: {DurationFormat.Hint}");
        }
        if (value < least)
        {
            throw Error($"{text} is too short: the least is {DurationFormat.Format(least)}");
        }
        return value;
    }

    /// <summary>The items of a list; a lone value counts as a list of one.</summary>
    public IReadOnlyList<PolicyNode> Items() => IsScalar ? [this] : Sequence();

    /// <summary>A list of single values (a lone value counts as a list of one).</summary>
    public IReadOnlyList<string> StringList() => Items().Select(item => item.String()).ToList();

    private static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode { Value: null or "" } => "nothing",
        YamlScalarNode scalar => $"'{scalar.Value}'",
        _ => "something else",
    };

    private static string Suggest(string key, IEnumerable<string> allowed)
    {
        var best = allowed
            .Select(k => (Key: k, Distance: EditDistance(key.ToLowerInvariant(), k.ToLowerInvariant())))
            .Where(c => c.Distance <= 2)
            .OrderBy(c => c.Distance)
            .FirstOrDefault();
        return best.Key is null ? "" : $" (did you mean '{best.Key}'?)";
    }

    private static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            previous = current;
        }
        return previous[b.Length];
    }
}

/// <summary>The entries of a mapping that passed the key check.</summary>
internal sealed class PolicyMapping(PolicyNode node, IReadOnlyList<(string Key, PolicyNode Value)> entries)
{
    public PolicyNode Node { get; } = node;

    public IReadOnlyList<(string Key, PolicyNode Value)> Entries { get; } = entries;

    /// <summary>The value of <paramref name="key"/>; null when absent or empty.</summary>
    public PolicyNode? Optional(string key) =>
        Entries.FirstOrDefault(e => e.Key == key).Value is { IsNull: false } value ? value : null;

    public PolicyNode Required(string key) =>
        Optional(key) ?? throw Node.Error($"'{key}' is required");
}
