using Understudy.GuestAgent.Operations.Launch;

namespace Understudy.GuestAgent.Supervision.Recovery;

/// <summary>
/// Decides which process exits are faults (docs/policy.md, "Faults"): any end of an
/// application's main process (it is meant to run until stopped), and any member killed by a
/// signal that means a crash or a kill -9. A forked helper that exits, or dies of SIGPIPE or
/// SIGTERM, is ordinary work.
/// </summary>
internal static class FaultClassifier
{
    private static readonly HashSet<int> CrashSignals =
    [
        4,  // SIGILL
        5,  // SIGTRAP
        6,  // SIGABRT
        7,  // SIGBUS
        8,  // SIGFPE
        9,  // SIGKILL
        11, // SIGSEGV
        31, // SIGSYS
    ];

    /// <param name="mainApp">the application whose main process this was, or null for another process</param>
    public static Fault? Classify(MemberExited exit, string? mainApp, int generation)
    {
        if (mainApp is not null)
        {
            var kind = exit.Signal != 0 ? "crash" : "exit";
            return new Fault(kind, mainApp, exit.Vpid, $"{mainApp} (pid {exit.Vpid}) {exit.How}", null, generation);
        }
        if (exit.App is not null && CrashSignals.Contains(exit.Signal))
        {
            return new Fault("crash", exit.App, exit.Vpid, $"{exit.Who} {exit.How}", null, generation);
        }
        return null;
    }
}
