using System.CommandLine;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl group apply|start|stop|restart|show|delete</c>: groups kept available by a policy.</summary>
public static class GroupCommand
{
    public static Command Create() => new("group", "Keep a group available under a policy: apply it, start, stop, restart and show the group, delete the policy")
    {
        GroupApplyCommand.Create(),
        GroupControlCommand.Create(GroupControlCommand.Verb.Start),
        GroupControlCommand.Create(GroupControlCommand.Verb.Stop),
        GroupControlCommand.Create(GroupControlCommand.Verb.Restart),
        GroupShowCommand.Create(),
        GroupDeleteCommand.Create(),
    };
}
