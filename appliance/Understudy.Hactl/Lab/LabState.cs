namespace Understudy.Hactl.Lab;

/// <summary>A process the lab made, named so that a reused pid is never taken for it.</summary>
/// <param name="StartTime">field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.</param>
public sealed record LabProcess(int Pid, long StartTime);

/// <summary>One node as the state file records it.</summary>
/// <param name="Link">the switch-side end of the node's veth pair, in the switch's network namespace.</param>
/// <param name="Holder">pid 1 of the node's pid namespace, which holds its network and mount namespaces.</param>
/// <param name="NetNamespace">the node's network namespace, as /proc/PID/ns/net names it (net:[INODE]).</param>
/// <param name="Agent">the node's guest agent.</param>
public sealed record LabNodeState(
    string Name,
    string Address,
    string Link,
    LabProcess? Holder = null,
    string? NetNamespace = null,
    LabProcess? Agent = null);

/// <summary>
/// DIR/lab.json: everything a lab is made of. The plan (names, addresses, links) is written
/// before anything is made, and each process as soon as it exists, so that <c>hactl lab down</c>
/// removes everything even after hactl or the whole lab crashed.
/// </summary>
/// <param name="Switch">the holder of the switch's network namespace (the bridge and the switch-side links).</param>
/// <param name="PeerTimeout">the agents' --peer-timeout; null: their default.</param>
/// <param name="MigrationResolveTimeout">the agents' --migration-resolve-timeout; null: their default.</param>
public sealed record LabState(
    int Version,
    string Dir,
    string Subnet,
    string Bridge,
    IReadOnlyList<LabNodeState> Nodes,
    LabProcess? Switch = null,
    string? SwitchNetNamespace = null,
    TimeSpan? PeerTimeout = null,
    TimeSpan? MigrationResolveTimeout = null)
{
    public const int CurrentVersion = 1;

    public LabNodeState? Node(string name) => Nodes.FirstOrDefault(n => n.Name == name);

    public LabState WithNode(LabNodeState node) =>
        this with { Nodes = Nodes.Select(n => n.Name == node.Name ? node : n).ToList() };
}
