using System.Globalization;
using System.Text;

namespace Understudy.Hactl.Lab;

/// <summary>Where a lab keeps its files under DIR, and how its nodes, links and addresses are named.</summary>
public sealed class LabLayout
{
    public const int MaxNodes = 26;
    public const string Bridge = "lab-br";

    /// <summary>The port each node's agent serves its peers on, at the node's address.</summary>
    public const int PeerPort = 7400;

    /// <summary>The longest Unix socket path the kernel accepts (sun_path holds 108 bytes with the NUL).</summary>
    private const int MaxSocketPath = 107;

    public LabLayout(string dir) => Dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));

    public string Dir { get; }
    public string StateFile => Path.Combine(Dir, "lab.json");
    public string LockFile => Path.Combine(Dir, "lab.lock");
    public string SwitchDir => Path.Combine(Dir, "switch");
    public string NodeDir(string node) => Path.Combine(Dir, "nodes", node);
    public string NodeStateDir(string node) => Path.Combine(NodeDir(node), "state");
    public string AgentSocket(string node) => Path.Combine(NodeDir(node), "agent.sock");
    public string AgentLog(string node) => Path.Combine(NodeDir(node), "agent.log");

    /// <summary>The cluster's credentials (ca.crt, ca.key, NODE.crt, NODE.key for every node), 0700.</summary>
    public string ClusterDir => Path.Combine(Dir, "cluster");

    /// <summary>IP:PORT where a node's agent serves the other nodes.</summary>
    public static string PeerAddress(LabNodeState node) => string.Create(CultureInfo.InvariantCulture, $"{node.Address}:{PeerPort}");

    /// <summary>node-a, node-b, ... node-z.</summary>
    public static string NodeName(int index) => "node-" + (char)('a' + index);

    /// <summary>
    /// The hardware address of a node's eth0, the same each time the node starts (as a machine keeps
    /// its MAC across a reboot): 02:00 (locally administered) and the four bytes of its IPv4 address.
    /// Were it new at each start, the other nodes would send to the old one until their neighbour
    /// entries expired, for up to a minute after `lab start`.
    /// </summary>
    public static string MacAddress(LabNodeState node) =>
        "02:00:" + string.Join(':', node.Address.Split('.').Select(b => byte.Parse(b, CultureInfo.InvariantCulture).ToString("x2", CultureInfo.InvariantCulture)));

    /// <summary>The switch-side end of a node's veth pair (at most 15 characters, as the kernel requires).</summary>
    public static string LinkName(string node) => "veth-" + node;

    /// <summary>
    /// The lab's /24: 10.213.X.0/24, X taken from a hash of DIR's full path, so that two labs on one
    /// machine almost always differ. The labs could not collide anyway: each bridge is in a
    /// network namespace of its own and never on the host.
    /// </summary>
    public string SubnetPrefix
    {
        get
        {
            uint hash = 2166136261; // FNV-1a
            foreach (var b in Encoding.UTF8.GetBytes(Dir))
            {
                hash = (hash ^ b) * 16777619;
            }
            return string.Create(CultureInfo.InvariantCulture, $"10.213.{hash % 256}");
        }
    }

    public string Subnet => SubnetPrefix + ".0/24";

    /// <summary>node-a is .1, node-b .2, ...</summary>
    public string Address(int index) => string.Create(CultureInfo.InvariantCulture, $"{SubnetPrefix}.{index + 1}");

    /// <summary>Whether DIR is short enough for its nodes' agent sockets.</summary>
    public bool SocketPathsFit => Encoding.UTF8.GetByteCount(AgentSocket(NodeName(0))) <= MaxSocketPath;

    public LabState Plan(int nodes) => new(
        LabState.CurrentVersion, Dir, Subnet, Bridge,
        Enumerable.Range(0, nodes).Select(i => new LabNodeState(NodeName(i), Address(i), LinkName(NodeName(i)))).ToList());
}
