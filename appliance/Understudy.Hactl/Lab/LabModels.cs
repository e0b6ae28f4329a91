namespace Understudy.Hactl.Lab;

// The documents `hactl lab up --json` and `hactl lab status --json` print (camelCase).

/// <param name="Agent">the address the host's <c>hactl COMMAND --agent</c> takes: unix:PATH.</param>
/// <param name="PeerAddress">IP:PORT where the node's agent serves the other nodes (its peers) over mutual TLS.</param>
public sealed record LabNodeView(string Name, string Address, string Agent, string StateDir, string PeerAddress);

/// <param name="ClusterDir">the cluster's credentials: ca.crt, ca.key and each node's NODE.crt and NODE.key.</param>
public sealed record LabUpResult(string Dir, string Subnet, string ClusterDir, IReadOnlyList<LabNodeView> Nodes);

/// <param name="State">up, or crashed (its processes are gone; <c>hactl lab start</c> brings it back).</param>
/// <param name="Link">up, down (partitioned) or absent (the node is crashed, or the switch is gone).</param>
/// <param name="AgentAnswers">whether the node's agent answered a status call on its Unix socket.</param>
public sealed record LabNodeStatus(string Name, string Address, string Agent, string StateDir, string PeerAddress, string State, string Link, bool AgentAnswers);

public sealed record LabStatusResult(string Dir, string Subnet, string ClusterDir, IReadOnlyList<LabNodeStatus> Nodes);
