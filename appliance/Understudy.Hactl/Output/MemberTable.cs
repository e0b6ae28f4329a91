namespace Understudy.Hactl.Output;

/// <summary>The members of a group as a table (status and restore).</summary>
public static class MemberTable
{
    public static void Write(TextWriter writer, IEnumerable<MemberInfo> members, string indent = "")
    {
        var table = new Table("PID", "HOST PID", "APP", "EXECS", "STATE", "TRACKER", "PROGRAM");
        foreach (var m in members)
        {
            table.Add(m.Pid, m.HostPid == 0 ? "-" : m.HostPid, Dash(m.App), m.ExecCount, Dash(m.State), Dash(m.Tracker), Dash(m.Program));
        }

        if (table.Count == 0)
        {
            writer.WriteLine(indent + "(no members)");
        }
        else
        {
            table.WriteTo(writer, indent);
        }
    }

    private static string Dash(string s) => s.Length == 0 ? "-" : s;
}
