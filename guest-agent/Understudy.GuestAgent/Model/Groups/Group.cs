using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Members;

namespace Understudy.GuestAgent.Model.Groups;

/// <summary>
/// One group on this node: its members, its registration lock and its us-init process.
/// </summary>
internal sealed class Group
{
    private readonly ILogger _logger;
    private volatile InitProcess? _init;

    public Group(string name, TimeSpan registrationGrace, TimeProvider time, ILogger logger)
    {
        Name = name;
        _logger = logger;
        Gate = new RegistrationGate(name, registrationGrace, time, logger, OnRegistrationExpired);
    }

    public string Name { get; }

    public RegistrationGate Gate { get; }

    public MemberTable Members { get; } = new();

    /// <summary>
    /// Serializes what starts or stops the group's us-init (launching the first application,
    /// stop, restore), so that a group never has two.
    /// </summary>
    public SemaphoreSlim Lifecycle { get; } = new(1, 1);

    /// <summary>The group's us-init, null while the group is stopped.</summary>
    public InitProcess? Init
    {
        get => _init;
        set => _init = value;
    }

    /// <summary>The state Status reports: running, stopped, checkpointing or restoring.</summary>
    public string State => Gate.Mode switch
    {
        GateMode.Restoring or GateMode.Resuming => "restoring",
        GateMode.Closing or GateMode.Held => "checkpointing",
        _ => _init is { HasExited: false } || Members.Count > 0 ? "running" : "stopped",
    };

    public bool IsRunning => _init is { HasExited: false } || Members.Count > 0;

    private void OnRegistrationExpired(PendingRegistration registration)
    {
        // An exec whose new program never said HELLO: the vpid may live on, but not as a member.
        if (registration.Kind == RegistrationKind.Exec
            && Members.Find(registration.Vpid) is { State: MemberState.Exec } member
            && Members.Remove(member))
        {
            _logger.LogWarning(
                "Member {Vpid} ({App}) of group {Group} left the group: its exec never said HELLO (a statically linked program?)",
                member.Vpid, member.App, Name);
        }
    }
}
