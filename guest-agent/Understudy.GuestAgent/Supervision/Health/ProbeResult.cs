namespace Understudy.GuestAgent.Supervision.Health;

/// <summary>One run of a probe: passed or not, and what was seen ("connection refused", "HTTP 503").</summary>
internal sealed record ProbeResult(bool Passed, string Detail)
{
    public static ProbeResult Pass(string detail) => new(true, detail);

    public static ProbeResult Fail(string detail) => new(false, detail);
}

/// <summary>The process a probe is about: the application's main process in its group.</summary>
internal sealed record ProbeTarget(string Group, string App, int Vpid);
