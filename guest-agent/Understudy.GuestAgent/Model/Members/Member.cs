using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Members;

internal enum MemberState
{
    Running,
    /// <summary>Answered PREPARE, or was restored and waits for RESUME.</summary>
    Frozen,
    /// <summary>Its connection ended during an exec; the new program will say HELLO with the same vpid.</summary>
    Exec,
}

/// <summary>A process registered in a group: who it is (from HELLO) and how to reach it.</summary>
internal sealed class Member
{
    private volatile MemberConnection? _connection;
    private volatile MemberState _state;

    public Member(long id, HelloMessage hello, MemberConnection connection)
    {
        Id = id;
        Group = hello.Group;
        Vpid = hello.Vpid;
        Vppid = hello.Vppid;
        App = hello.App;
        ExecCount = hello.ExecCount;
        Origin = hello.Origin;
        Tracker = hello.Tracker;
        Held = hello.Held;
        HostPid = connection.HostPid;
        JoinedUtc = DateTime.UtcNow;
        _connection = connection;
        // A restored process, and one held frozen by a migration, stays frozen until the coordinator's RESUME.
        _state = hello.Origin == RegistrationOrigin.Restore || hello.Held ? MemberState.Frozen : MemberState.Running;
    }

    public long Id { get; }
    public string Group { get; }
    public int Vpid { get; }
    public int Vppid { get; }
    public string App { get; }
    public int ExecCount { get; }
    public RegistrationOrigin Origin { get; }
    public string Tracker { get; }

    /// <summary>It registered held frozen (HOLD, before a link it lost): it runs again only on RESUME.</summary>
    public bool Held { get; }
    public int HostPid { get; }
    public DateTime JoinedUtc { get; }

    /// <summary>Null while an exec is in progress (the old program's connection is gone).</summary>
    public MemberConnection? Connection => _connection;

    public MemberState State
    {
        get => _state;
        set => _state = value;
    }

    /// <summary>Its threads' uninterruptible waits, as <see cref="MemberLiveness"/> saw them.</summary>
    public UninterruptibleWaits Waits { get; } = new();

    /// <summary>The old program's connection ended in the middle of an exec.</summary>
    public void DetachForExec()
    {
        _connection = null;
        _state = MemberState.Exec;
    }

    /// <summary>How errors and logs name the member: "member 3 (worker)".</summary>
    public string Describe() => $"member {Vpid} ({App})";

    public override string ToString() => Describe();
}
