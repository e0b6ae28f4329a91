using Microsoft.Extensions.Options;

namespace Understudy.GuestAgent.Foundation.Configuration;

/// <summary>Where things live in the state directory (docs/protocol.md, "State directory").</summary>
internal sealed class StatePaths
{
    public StatePaths(IOptions<AgentOptions> options)
    {
        var o = options.Value;
        Root = o.StateDir;
        NativeDir = o.NativeDir;
        InterceptorPath = o.InterceptorPath;
    }

    public string Root { get; }
    public string NativeDir { get; }
    public string InterceptorPath { get; }

    public string CoordSocket => Path.Combine(Root, "coord.sock");
    public string GroupsDir => Path.Combine(Root, "groups");
    public string GroupDir(string group) => Path.Combine(GroupsDir, group);
    public string NativeLog(string group) => Path.Combine(GroupDir(group), "native.log");
    public string OutputLog(string group) => Path.Combine(GroupDir(group), "output.log");
    public string PoliciesDir => Path.Combine(Root, "policies");
    public string EventsJournal => Path.Combine(Root, "events.jsonl");
    public string InitProgram => Path.Combine(NativeDir, "us-init");
    public string RestorerProgram => Path.Combine(NativeDir, "us-restorer");
}
