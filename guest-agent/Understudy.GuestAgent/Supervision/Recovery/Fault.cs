namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// A failure of a running group that calls for recovery.
/// </summary>
/// <param name="Kind">crash (killed by a signal), exit (a main process ended), hang (a health check failed past its threshold) or init (us-init died)</param>
/// <param name="AnsweredUtc">for a hang: the group still answered then, so a checkpoint from before is free of the hang</param>
/// <param name="Generation">the run of the group it happened in; a fault of an earlier run is stale</param>
internal sealed record Fault(string Kind, string? App, int? Vpid, string Reason, DateTimeOffset? AnsweredUtc, int Generation);
