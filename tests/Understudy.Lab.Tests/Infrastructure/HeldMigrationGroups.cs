using System.Globalization;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// The groups that the migration fault tests start on node-a and move (a counter and a 32 MiB
/// memory workload, without a policy or supervised by one), and what those tests read of a node:
/// the gate files of its held migration moments, and its agent's log.
/// </summary>
internal sealed class HeldMigrationGroups(LabSession lab)
{
    private const string A = "node-a";
    private static readonly string[] Tags = ["c count", "count"];
    private static readonly string[] Roles = ["counter-c", "memory"];

    public string Gate(string node, string group, string moment) => Path.Combine(lab.Node(node).StateDir, "fault-holds", $"{group}.{moment}");

    public string AgentLog(string node)
    {
        using var file = new FileStream(Path.Combine(lab.Dir, "nodes", node, "agent.log"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return new StreamReader(file).ReadToEnd();
    }

    public static string Tail(string log) => log.Length <= 2000 ? log : log[^2000..];

    /// <summary>A counter and a 32 MiB memory workload on node-a, without a policy.</summary>
    public async Task<LabGroup> Launch(string name)
    {
        var onA = lab.On(lab.Node(A));
        (await onA.Run("launch", name, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok();
        (await onA.Run("launch", name, "--app", "memory", "--", Repo.Workload("wl_memory"), "32")).Ok();
        return await Running(name);
    }

    /// <summary>The same group, supervised on node-a by a policy (restored on a fault).</summary>
    public async Task<LabGroup> StartSupervised(string name)
    {
        var policy = $"""
            group: {name}
            checkpoints:
              interval: off
            recovery:
              action: restore
            apps:
              - name: counter
                command: {Repo.Workload("wl_counter")}
                args: [c]
              - name: memory
                command: {Repo.Workload("wl_memory")}
                args: ["32"]
            """;
        var path = Path.Combine(lab.Dir, name + ".yaml");
        await File.WriteAllTextAsync(path, policy);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var onA = lab.On(lab.Node(A));
        (await onA.Run("group", "apply", "-f", path)).Ok();
        (await onA.Run("group", "start", name)).Ok();
        return await Running(name);
    }

    private async Task<LabGroup> Running(string name)
    {
        var log = lab.Node(A).Log(name);
        await LabMigration.WaitForCounts(new LabGroup(name, log, Tags, Roles, []), 3, 0, $"on {A}");
        var members = await LabMigration.WaitForMembers(lab, A, name, 2);
        lab.Note(string.Create(CultureInfo.InvariantCulture, $"{name} runs on {A}: pids {string.Join(' ', members.Select(m => m.Pid))}"));
        return new LabGroup(name, log, Tags, Roles, members.Select(m => m.Pid).ToList());
    }
}
