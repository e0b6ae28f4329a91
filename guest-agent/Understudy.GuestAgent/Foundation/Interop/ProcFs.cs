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

    /// <summary>The process exists and is not a zombie (the state field of /proc/PID/stat).</summary>
    public static bool IsRunning(int hostPid)
    {
        if (hostPid <= 0)
        {
            return false;
        }
        try
        {
            var stat = File.ReadAllText($"/proc/{hostPid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is not ('Z' or 'X' or default(char));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
