using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Cluster;

namespace Understudy.Hactl.Commands;

/// <summary>
/// <c>hactl cluster init DIR</c>: the credentials of a new cluster (<see cref="ClusterAuthority"/>).
/// </summary>
public static class ClusterCommand
{
    public static Command Create()
    {
        var cluster = new Command("cluster", "Credentials of a cluster of nodes (mutual TLS between their agents)");
        cluster.Add(CreateInit());
        return cluster;
    }

    private static Command CreateInit()
    {
        var dir = new Argument<string>("DIR") { Description = "Directory for the credentials (created 0700; it must not hold a cluster yet)" };
        var nodes = new Option<string>("--nodes")
        {
            Description = "The nodes' names, separated by commas",
            HelpName = "NAMES",
            DefaultValueFactory = _ => "node-a,node-b",
        };
        nodes.Validators.Add(result =>
        {
            var names = (result.GetValueOrDefault<string>() ?? "").Split(',', StringSplitOptions.TrimEntries);
            foreach (var name in names)
            {
                if (PeerNode.NameProblem(name) is { } problem)
                {
                    result.AddError($"--nodes: {problem}");
                }
            }
            if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            {
                result.AddError("--nodes names a node twice");
            }
        });
        var init = new Command("init",
            "Create a cluster CA and, for each node, a key and a certificate signed by it: DIR/ca.crt, DIR/NODE.crt, DIR/NODE.key (keys 0600)")
        {
            dir, nodes,
        };
        init.SetHandler((parse, _) =>
        {
            var directory = Path.GetFullPath(parse.GetRequiredValue(dir));
            var names = parse.GetRequiredValue(nodes).Split(',', StringSplitOptions.TrimEntries);
            ClusterAuthority.Create(directory, names);
            Console.WriteLine($"cluster credentials in {directory}: ca.crt, ca.key, and for {string.Join(", ", names)} NODE.crt and NODE.key");
            Console.WriteLine($"run each node's agent with --cluster {directory} --node NODE (copy ca.crt and that node's files alone to a real node)");
            return Task.FromResult(ExitCodes.Ok);
        });
        return init;
    }
}
