using Understudy.Images;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>A policy as read from its file, with where each key was (for later checks' errors).</summary>
/// <param name="AppPaths">each application's place in the file, like apps[2]</param>
internal sealed record ParsedPolicy(GroupPolicy Policy, string Text, PolicyMarks Marks, IReadOnlyDictionary<string, string> AppPaths);

/// <summary>
/// Reads a group policy from YAML (docs/policy.md) strictly: unknown keys, wrong types, bad
/// durations, out-of-range numbers and a cycle in the launch order are refused with the line,
/// column and key they are at. Nothing here looks at the machine; see PolicyEnvironment.
/// </summary>
internal static class PolicyParser
{
    public const int MaxApps = 64;

    private static readonly string[] TopKeys = ["group", "autostart", "images", "checkpoints", "recovery", "apps", "standby"];
    private static readonly string[] ImagesKeys = ["path"];
    private static readonly string[] CheckpointKeys = ["interval", "fullEvery", "retention", "compression"];
    private static readonly string[] RecoveryKeys = ["action", "maxAttempts", "window"];
    private static readonly string[] AppKeys = ["name", "command", "args", "env", "cwd", "user", "after", "ready", "health"];
    private static readonly string[] ReadyProbes = ["tcp", "http", "file", "command", "delay"];
    private static readonly string[] HealthProbes = ["alive", "tcp", "http", "command"];
    private static readonly string[] ReadyKeys = [.. ReadyProbes, "timeout", "interval"];
    private static readonly string[] HealthKeys = [.. HealthProbes, "interval", "timeout", "failureThreshold"];

    private static readonly TimeSpan LeastInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan LeastTimeout = TimeSpan.FromMilliseconds(10);

    /// <param name="source">how errors name the document, e.g. its file name</param>
    /// <exception cref="PolicyException">the document is not a valid policy.</exception>
    public static ParsedPolicy Parse(string text, string source)
    {
        var marks = new PolicyMarks(source);
        var root = new PolicyNode(Load(text, source), "", marks);
        var top = root.Mapping(TopKeys);

        var groupNode = top.Required("group");
        var group = groupNode.String();
        if (GroupName.Problem(group) is { } problem)
        {
            throw groupNode.Error(problem);
        }

        var images = top.Optional("images")?.Mapping(ImagesKeys).Optional("path") is { } pathNode
            ? AbsolutePath(pathNode)
            : null;

        var apps = ReadApps(top.Required("apps"));
        var policy = new GroupPolicy(
            group,
            top.Optional("autostart")?.Bool() ?? false,
            images,
            ReadCheckpoints(top.Optional("checkpoints")),
            ReadRecovery(top.Optional("recovery")),
            LaunchOrder.Sort(apps, marks),
            ReadStandby(top.Optional("standby")));
        return new ParsedPolicy(policy, text, marks, apps.ToDictionary(a => a.App.Name, a => a.NamePath[..^".name".Length]));
    }

    private static YamlNode Load(string text, string source)
    {
        var parser = new Parser(new StringReader(text));
        var stream = new YamlStream();
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            throw new PolicyException(source, (int)e.Start.Line, (int)e.Start.Column, "", $"not valid YAML: {OneLine(e.Message)}");
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet gives up without a mark on some syntax errors (an unclosed bracket).
            var at = parser.Current?.Start ?? Mark.Empty;
            throw new PolicyException(source, (int)at.Line, (int)at.Column, "", "not valid YAML here (an unclosed bracket or quote?)");
        }
        return stream.Documents.Count switch
        {
            0 => throw new PolicyException(source, 0, 0, "", "the file is empty, a policy needs at least 'group' and 'apps'"),
            1 => stream.Documents[0].RootNode,
            _ => throw new PolicyException(source, (int)stream.Documents[1].RootNode.Start.Line, 1, "",
                "the file holds more than one YAML document, write one policy per file"),
        };
    }

    private static string? ReadStandby(PolicyNode? node)
    {
        if (node is null)
        {
            return null;
        }
        var name = node.String();
        if (name.Length == 0 || name.Length > 63 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.') || name[0] is '-' or '.')
        {
            throw node.Error($"'{name}' is not a node name: 1 to 63 letters, digits, '-' or '.', the name of a peer of the agent (--peer NAME=IP:PORT)");
        }
        return name;
    }

    private static CheckpointSchedule ReadCheckpoints(PolicyNode? node)
    {
        var defaults = new CheckpointSchedule(Interval: null, FullEvery: 1, Retention: 3);
        if (node is null)
        {
            return defaults;
        }
        var map = node.Mapping(CheckpointKeys);
        var intervalNode = map.Optional("interval");
        var interval = intervalNode is null || intervalNode.String() == "off"
            ? (TimeSpan?)null
            : intervalNode.Duration(LeastInterval);
        return new CheckpointSchedule(
            interval,
            map.Optional("fullEvery")?.Int(1, 1_000_000) ?? defaults.FullEvery,
            map.Optional("retention")?.Int(1, 1_000_000) ?? defaults.Retention,
            map.Optional("compression")?.OneOf(["none", "lz4"]) ?? defaults.Compression);
    }

    private static RecoveryPolicy ReadRecovery(PolicyNode? node)
    {
        var defaults = new RecoveryPolicy(RecoveryAction.Restore, MaxAttempts: 3, Window: TimeSpan.FromMinutes(10));
        if (node is null)
        {
            return defaults;
        }
        var map = node.Mapping(RecoveryKeys);
        var action = defaults.Action;
        if (map.Optional("action") is { } actionNode && !RecoveryActions.TryParse(actionNode.String(), out action))
        {
            throw actionNode.Error($"'{actionNode.String()}' is not a recovery action: use restore, restart or stop");
        }
        return new RecoveryPolicy(
            action,
            map.Optional("maxAttempts")?.Int(1, 1000) ?? defaults.MaxAttempts,
            map.Optional("window")?.Duration(TimeSpan.FromSeconds(1)) ?? defaults.Window);
    }

    private static List<AppEntry> ReadApps(PolicyNode node)
    {
        var items = node.Sequence();
        if (items.Count == 0)
        {
            throw node.Error("a group needs at least one application");
        }
        if (items.Count > MaxApps)
        {
            throw node.Error($"{items.Count} applications, but a group may have at most {MaxApps}");
        }
        var apps = new List<AppEntry>();
        foreach (var item in items)
        {
            var app = ReadApp(item);
            if (apps.FirstOrDefault(a => a.App.Name == app.App.Name) is not null)
            {
                throw item.Mapping(AppKeys).Required("name").Error($"two applications are named '{app.App.Name}', names must be unique");
            }
            apps.Add(app);
        }
        return apps;
    }

    private static AppEntry ReadApp(PolicyNode node)
    {
        var map = node.Mapping(AppKeys);
        var nameNode = map.Required("name");
        var name = nameNode.String();
        if (GroupName.Problem(name) is not null)
        {
            throw nameNode.Error($"'{name}' is not a valid application name: use 1 to 64 of A-Z a-z 0-9 . _ - (not starting with '.')");
        }

        var commandNode = map.Required("command");
        var command = commandNode.String();
        if (command.Contains('/') && !Path.IsPathFullyQualified(command))
        {
            throw commandNode.Error($"'{command}' is a relative path: give an absolute path, or a bare program name to look up in PATH");
        }

        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map.Optional("env") is { } envNode)
        {
            foreach (var (key, value) in envNode.AnyMapping().Entries)
            {
                if (key.Contains('=') || key.Contains('\0'))
                {
                    throw value.Error($"'{key}' is not a valid environment variable name");
                }
                env[key] = value.IsNull ? "" : value.String();
            }
        }

        var afterNodes = map.Optional("after")?.Items() ?? [];

        var app = new AppPolicy(
            name,
            command,
            map.Optional("args")?.StringList() ?? [],
            env,
            map.Optional("cwd") is { } cwdNode ? AbsolutePath(cwdNode) : "/",
            map.Optional("user")?.String(),
            afterNodes.Select(a => a.String()).ToList(),
            map.Optional("ready") is { } readyNode ? ReadReadiness(readyNode) : null,
            map.Optional("health")?.Sequence().Select(ReadHealth).ToList() ?? []);
        return new AppEntry(app, nameNode.Path, afterNodes.Select(a => a.Path).ToList());
    }

    private static ReadinessCheck ReadReadiness(PolicyNode node)
    {
        var map = node.Mapping(ReadyKeys);
        var probe = ReadProbe(map, ReadyProbes, "ready");
        if (probe is DelayProbeSpec && map.Optional("timeout") is { } timeoutNode)
        {
            throw timeoutNode.Error("a delay has no timeout, remove 'timeout'");
        }
        return new ReadinessCheck(
            probe,
            map.Optional("timeout")?.Duration(LeastTimeout) ?? TimeSpan.FromSeconds(30),
            map.Optional("interval")?.Duration(TimeSpan.FromMilliseconds(10)) ?? TimeSpan.FromMilliseconds(200));
    }

    private static HealthCheck ReadHealth(PolicyNode node)
    {
        var map = node.Mapping(HealthKeys);
        return new HealthCheck(
            ReadProbe(map, HealthProbes, "health check"),
            map.Optional("interval")?.Duration(LeastInterval) ?? TimeSpan.FromSeconds(10),
            map.Optional("timeout")?.Duration(LeastTimeout) ?? TimeSpan.FromSeconds(5),
            map.Optional("failureThreshold")?.Int(1, 1000) ?? 3);
    }

    /// <summary>Exactly one of <paramref name="kinds"/> must be given.</summary>
    private static ProbeSpec ReadProbe(PolicyMapping map, string[] kinds, string what)
    {
        var given = map.Entries.Where(e => kinds.Contains(e.Key)).ToList();
        if (given.Count != 1)
        {
            throw given.Count == 0
                ? map.Node.Error($"a {what} needs one of: {string.Join(", ", kinds)}")
                : given[1].Value.Error($"a {what} checks one thing: {given[0].Key} and {given[1].Key} are both given, write two checks instead");
        }
        var (kind, value) = given[0];
        return kind switch
        {
            "tcp" => ReadTcp(value),
            "http" => ReadHttp(value),
            "file" => new FileProbeSpec(AbsolutePath(value)),
            "command" => ReadCommand(value),
            "delay" => new DelayProbeSpec(value.Duration(TimeSpan.Zero)),
            _ => value.Bool() ? new AliveProbeSpec() : throw value.Error("'alive: false' checks nothing, remove the check"),
        };
    }

    /// <summary>"8080", "127.0.0.1:8080", "localhost:8080" or "[::1]:8080".</summary>
    private static TcpProbeSpec ReadTcp(PolicyNode node)
    {
        var text = node.String();
        var colon = text.LastIndexOf(':');
        var host = colon < 0 ? "127.0.0.1" : text[..colon].Trim('[', ']');
        var portText = colon < 0 ? text : text[(colon + 1)..];
        if (host.Length == 0 || !int.TryParse(portText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            || port is < 1 or > 65535)
        {
            throw node.Error($"'{text}' is not a TCP address: write PORT or HOST:PORT, like 8080 or 127.0.0.1:8080");
        }
        return new TcpProbeSpec(host, port);
    }

    private static HttpProbeSpec ReadHttp(PolicyNode node)
    {
        var text = node.String();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            throw node.Error($"'{text}' is not an http:// or https:// URL");
        }
        return new HttpProbeSpec(url);
    }

    /// <summary>A list is the program and its arguments; a single string is run by /bin/sh -c.</summary>
    private static CommandProbeSpec ReadCommand(PolicyNode node)
    {
        var argv = node.IsScalar ? ["/bin/sh", "-c", node.String()] : node.StringList();
        if (argv.Count == 0 || argv[0].Length == 0)
        {
            throw node.Error("the command is empty");
        }
        if (argv[0].Contains('/') && !Path.IsPathFullyQualified(argv[0]))
        {
            throw node.Error($"'{argv[0]}' is a relative path: give an absolute path, or a bare program name to look up in PATH");
        }
        return new CommandProbeSpec(argv);
    }

    private static string AbsolutePath(PolicyNode node)
    {
        var path = node.String();
        return Path.IsPathFullyQualified(path)
            ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(path))
            : throw node.Error($"'{path}' is not an absolute path");
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim().TrimEnd('.');
}

/// <summary>An application and where its name and its 'after' entries are, for launch-order errors.</summary>
internal sealed record AppEntry(AppPolicy App, string NamePath, IReadOnlyList<string> AfterPaths);
