using Microsoft.Extensions.Options;
using Understudy.Images;

namespace Understudy.GuestAgent.Foundation.Configuration;

/// <summary>
/// Where things live in the state directory (docs/protocol.md, "State directory"). A group's
/// directory (STATE/groups/GROUP, with its staging/ and checkpoints/) is laid out by the image
/// library's <see cref="CheckpointStore"/> alone; the logs beside them are placed from there.
/// </summary>
internal sealed class StatePaths
{
    private readonly CheckpointStore _store;

    public StatePaths(IOptions<AgentOptions> options, CheckpointStore store)
    {
        var o = options.Value;
        Root = o.StateDir;
        NativeDir = o.NativeDir;
        InterceptorPath = o.InterceptorPath;
        _store = store;
    }

    public string Root { get; }
    public string NativeDir { get; }
    public string InterceptorPath { get; }

    public string CoordSocket => Path.Combine(Root, "coord.sock");
    /// <summary>Held (flock) by the one agent that uses the state directory.</summary>
    public string LockFile => Path.Combine(Root, "agent.lock");
    /// <summary>Where a group's us-init listens for the next agent (docs/protocol.md, "Group init control").</summary>
    public string InitControlSocket(string group) => Path.Combine(GroupDir(group), "init.sock");
    public string GroupsDir => _store.GroupsDir;
    public string GroupDir(string group) => _store.GroupDir(group);
    public string NativeLog(string group) => Path.Combine(GroupDir(group), "native.log");
    public string OutputLog(string group) => Path.Combine(GroupDir(group), "output.log");
    public string PoliciesDir => Path.Combine(Root, "policies");
    public string EventsJournal => Path.Combine(Root, "events.jsonl");
    public string InitProgram => Path.Combine(NativeDir, "us-init");
    public string RestorerProgram => Path.Combine(NativeDir, "us-restorer");
}
