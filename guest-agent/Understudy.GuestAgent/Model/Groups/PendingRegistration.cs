namespace Understudy.GuestAgent.Model.Groups;

internal enum RegistrationKind
{
    /// <summary>The agent asked us-init to launch an application that has not said HELLO yet.</summary>
    Launch,
    /// <summary>FORK_BEGIN was granted; the child has not said HELLO yet.</summary>
    Fork,
    /// <summary>EXEC_BEGIN was granted; the new program has not said HELLO yet.</summary>
    Exec,
    /// <summary>SPAWN_BEGIN was granted; the child has not said HELLO yet.</summary>
    Spawn,
    /// <summary>A HELLO was admitted and its WELCOME is not out yet.</summary>
    Hello,
}

/// <summary>
/// A registration in flight. While any exists, a checkpoint does not start: no half-registered
/// process is ever in a checkpoint (docs/architecture.md, "A coordinated checkpoint", step 1).
/// </summary>
internal sealed class PendingRegistration
{
    public PendingRegistration(RegistrationKind kind, int vpid)
    {
        Kind = kind;
        Vpid = vpid;
    }

    public RegistrationKind Kind { get; }

    /// <summary>Fork and spawn: the parent. Exec and hello: the process itself. Launch: 0.</summary>
    public int Vpid { get; }

    /// <summary>The child's vpid once FORK_END or SPAWN_END reported it.</summary>
    public int? ChildVpid { get; set; }

    /// <summary>A child's HELLO took this registration; it completes when that HELLO is answered.</summary>
    public bool Claimed { get; set; }

    public string Describe() => Kind switch
    {
        RegistrationKind.Fork => $"fork by member {Vpid}",
        RegistrationKind.Exec => $"exec of member {Vpid}",
        RegistrationKind.Spawn => $"spawn by member {Vpid}",
        RegistrationKind.Launch => "an application launch",
        _ => $"registration of process {Vpid}",
    };
}
