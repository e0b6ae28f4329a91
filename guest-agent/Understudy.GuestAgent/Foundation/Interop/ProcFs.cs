namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>What /proc says about a host process.</summary>
internal static class ProcFs
{
    /// <summary>readlink /proc/PID/exe, or "" when the process is gone or not ours to see.</summary>
    public static string ExecutablePath(int hostPid)
    {
        if (hostPid <= 0)
        {
            return "";
        }
        try
        {
            return new FileInfo($"/proc/{hostPid}/exe").LinkTarget ?? "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
