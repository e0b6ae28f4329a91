using Understudy.Hactl.Output;

namespace Understudy.Hactl.Demo;

/// <summary>What <c>hactl demo --json</c> prints.</summary>
public sealed record DemoReport
{
    public required string StateDir { get; init; }
    public required bool Kept { get; init; }
    public required string Group { get; init; }
    public required IReadOnlyList<string> Workload { get; init; }
    public required LaunchResult Launch { get; init; }
    public required CheckpointSummary Checkpoint { get; init; }
    public long? CountAtCheckpoint { get; init; }
    public required IReadOnlyList<int> KilledHostPids { get; init; }
    public long? LastCountBeforeKill { get; init; }
    public required RestoreResult Restore { get; init; }
    public long? FirstCountAfterRestore { get; init; }
    public long? LastCountAfterRestore { get; init; }
    public required StopResult Stop { get; init; }
    public bool Ok => true;
}
