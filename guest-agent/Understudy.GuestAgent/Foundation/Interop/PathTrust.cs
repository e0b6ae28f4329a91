namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>
/// Whether the agent, often root, may trust a directory or file it reads or writes: one that
/// another user owns, or that others can write to, lets that user plant a policy the agent
/// runs, or a symbolic link the agent writes through.
/// </summary>
internal static class PathTrust
{
    private const int GroupOrOtherWrite = 0x12; // 022

    /// <summary>
    /// Null when <paramref name="path"/> is missing, or is owned by the agent's user and not
    /// writable by others; otherwise one line that says what is wrong and how to fix it.
    /// </summary>
    /// <param name="what">what the path is, for the message: "state directory", "policy file"</param>
    public static string? Problem(string path, string what)
    {
        if (Libc.OwnerAndMode(path) is not var (uid, mode))
        {
            return null;
        }
        var agent = Libc.EffectiveUserId;
        if (uid != agent)
        {
            return $"{what} {path} is owned by uid {uid}, not by the agent's user (uid {agent}): " +
                $"chown {agent} {path} if it is yours, or use another";
        }
        return (mode & GroupOrOtherWrite) != 0
            ? $"{what} {path} can be written by other users (mode {Convert.ToString(mode & 0xFFF, 8)}): chmod go-w {path}"
            : null;
    }
}
