using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Groups;

/// <summary>
/// How a process of a group ended, from its us-init's EXITED report: for messages that must say
/// "was killed by signal 6", not merely that the process is gone. A process is usually found
/// gone (its connection closed) a moment before us-init reaps it, so the report is waited for,
/// briefly.
/// </summary>
internal static class ExitReports
{
    /// <summary>How long a report may take after the process was found gone.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    /// <returns>
    /// "was killed by signal 6", "exited with code 3", "ended with the group's us-init (...)", or
    /// null when no report came in time
    /// </returns>
    public static async Task<string?> HowAsync(Group? group, int vpid, TimeProvider time, CancellationToken cancellationToken)
    {
        if (await ReportAsync(group, vpid, time, cancellationToken).ConfigureAwait(false) is { } report)
        {
            return report.How;
        }
        // us-init reads out every report before it counts as exited: none is coming after that.
        return group?.Init is { Exited.IsCompleted: true } init ? $"ended with the group's us-init ({init.DescribeExit()})" : null;
    }

    /// <summary>us-init's report of the process's end; null when none came in time (or us-init ended first).</summary>
    public static async Task<InitExited?> ReportAsync(Group? group, int vpid, TimeProvider time, CancellationToken cancellationToken)
    {
        if (group?.Init is not { } init)
        {
            return null;
        }
        var reaped = init.Reaped.WhenReaped(vpid);
        try
        {
            await Task.WhenAny(reaped, init.Exited).WaitAsync(Patience, time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
        return reaped.IsCompletedSuccessfully ? reaped.Result : null;
    }
}
