namespace Understudy.Hactl.Lab;

// The documents `hactl lab up --json` and `hactl lab status --json` print (camelCase).

/// <param name="Agent">the address the host's <c>hactl --agent</c> takes: unix:PATH.</param>
public sealed record LabNodeView(string Name, string Address, string Agent, string StateDir);

public sealed record LabUpResult(string Dir, string Subnet, IReadOnlyList<LabNodeView> Nodes);

/// <param name="State">up, or crashed (its processes are gone; <c>hactl lab start</c> brings it back).</param>
/// <param name="Link">up, down (partitioned) or absent (the node is crashed, or the switch is gone).</param>
/// <param name="AgentAnswers">whether the node's agent answered a status call on its Unix socket.</param>
public sealed record LabNodeStatus(string Name, string Address, string Agent, string StateDir, string State, string Link, bool AgentAnswers);

public sealed record LabStatusResult(string Dir, string Subnet, IReadOnlyList<LabNodeStatus> Nodes);
