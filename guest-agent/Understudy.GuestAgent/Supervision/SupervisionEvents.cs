using Understudy.GuestAgent.Events;

namespace Understudy.GuestAgent.Supervision;

// Lifecycle events of docs/policy.md ("Events") that only supervision publishes; the others
// are in Events/LifecycleEvents.cs.

/// <summary>app.resumed: after a restore, the processes of one application were let run (<see cref="LaunchOrderResume"/>).</summary>
/// <param name="Vpid">the application's main process</param>
/// <param name="Processes">how many processes of the application were resumed (its main process and its children)</param>
internal sealed record AppResumed(string Group, string App, int Vpid, int Processes) : AgentEvent(Group)
{
    public override string Type => "app.resumed";
    public override string Message => $"{App} (pid {Vpid}) resumed: {Processes} process{(Processes == 1 ? "" : "es")}";
    public override IEnumerable<(string, object?)> Fields() => [("app", App), ("pid", Vpid), ("processes", Processes)];
}

/// <summary>policy.deleted: hactl group delete took a stopped group's policy away.</summary>
/// <param name="Source">the file the policy had been applied from</param>
internal sealed record PolicyDeleted(string Group, string Source) : AgentEvent(Group)
{
    public override string Type => "policy.deleted";
    public override string Message => Source.Length == 0 ? "policy deleted" : $"policy deleted (it was applied from {Source})";
    public override IEnumerable<(string, object?)> Fields() => [("source", Source.Length == 0 ? null : Source)];
}
