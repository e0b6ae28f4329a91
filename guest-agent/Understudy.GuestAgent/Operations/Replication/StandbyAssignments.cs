using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// Which node is each group's standby: set by <c>hactl launch --standby NODE</c> or the policy's
/// <c>standby:</c> key, kept in STATE/groups/G/standby so that it outlives the agent. The node must
/// be one of the agent's peers (<c>--peer NAME=IP:PORT</c>).
/// </summary>
internal sealed class StandbyAssignments
{
    private const string FileName = "standby";
    private readonly StatePaths _paths;
    private readonly AgentOptions _options;
    private readonly ConcurrentDictionary<string, string?> _known = new(StringComparer.Ordinal);

    public StandbyAssignments(StatePaths paths, IOptions<AgentOptions> options)
    {
        _paths = paths;
        _options = options.Value;
    }

    /// <summary>A group's standby was set or changed.</summary>
    public event Action<string>? Changed;

    public string? StandbyOf(string group) => _known.GetOrAdd(group, g =>
    {
        var path = Path.Combine(_paths.GroupDir(g), FileName);
        return File.Exists(path) ? File.ReadAllText(path).Trim() is { Length: > 0 } node ? node : null : null;
    });

    /// <summary>The groups that have a standby, as recorded in the state directory.</summary>
    public IReadOnlyList<string> AssignedGroups() =>
        Directory.Exists(_paths.GroupsDir)
            ? Directory.EnumerateDirectories(_paths.GroupsDir).Select(Path.GetFileName).OfType<string>()
                .Where(g => GroupNames.IsValid(g) && StandbyOf(g) is not null).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>Gives the group a standby (null: none).</summary>
    /// <exception cref="AgentException">InvalidArgument: the node is not a peer of this agent, or is this node.</exception>
    public void Assign(string group, string? node)
    {
        GroupNames.Require(group);
        if (node is not null)
        {
            Require(node);
        }
        if (StandbyOf(group) == node)
        {
            return;
        }
        var dir = _paths.GroupDir(group);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var path = Path.Combine(dir, FileName);
        if (node is null)
        {
            File.Delete(path);
        }
        else
        {
            File.WriteAllText(path, node + "\n");
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        _known[group] = node;
        Changed?.Invoke(group);
    }

    /// <exception cref="AgentException">InvalidArgument: the node cannot be a standby of this agent's groups.</exception>
    public void Require(string node)
    {
        if (PeerProblem(node) is { } problem)
        {
            throw AgentException.InvalidArgument($"standby {node} refused: {problem}");
        }
    }

    /// <summary>Why this agent cannot send a group to <paramref name="node"/>, or null when it can.</summary>
    public string? PeerProblem(string node)
    {
        if (_options.Node is null)
        {
            return $"this agent has no cluster; start it with --node NAME --cluster DIR --peer {node}=IP:PORT";
        }
        if (node == _options.Node)
        {
            return $"{node} is this node; name another node of the cluster";
        }
        if (!_options.Peers.ContainsKey(node))
        {
            var known = _options.Peers.Count == 0 ? "none" : string.Join(", ", _options.Peers.Keys.Order(StringComparer.Ordinal));
            return $"{node} is not a peer of this agent (peers: {known}); add --peer {node}=IP:PORT to the agent's options";
        }
        return null;
    }
}
