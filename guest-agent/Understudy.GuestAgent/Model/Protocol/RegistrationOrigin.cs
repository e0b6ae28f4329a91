namespace Understudy.GuestAgent.Model.Protocol;

/// <summary>How a process came to say HELLO (the last token of HELLO).</summary>
internal enum RegistrationOrigin
{
    Launch,
    Fork,
    Exec,
    Spawn,
    Restore,
    /// <summary>A running process made its link again: the agent restarted, or its link was cut.</summary>
    Reattach,
}

internal static class RegistrationOrigins
{
    public static bool TryParse(string token, out RegistrationOrigin origin)
    {
        switch (token)
        {
            case "launch": origin = RegistrationOrigin.Launch; return true;
            case "fork": origin = RegistrationOrigin.Fork; return true;
            case "exec": origin = RegistrationOrigin.Exec; return true;
            case "spawn": origin = RegistrationOrigin.Spawn; return true;
            case "restore": origin = RegistrationOrigin.Restore; return true;
            case "reattach": origin = RegistrationOrigin.Reattach; return true;
            default: origin = default; return false;
        }
    }

    public static string ToToken(this RegistrationOrigin origin) => origin.ToString().ToLowerInvariant();
}
