using System.Globalization;
using System.Text.Json;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// A group launched on a lab node for the migration tests: its name, its output (the output.log of each
/// node it ran on, in the order it ran there: <see cref="GroupLog.FollowTo"/>), the "TAG N" lines its workloads print (each
/// must go on one by one across every move), the roles that verify themselves on SIGUSR1, and the
/// pids of its processes in its own pid namespace, in order.
/// </summary>
public sealed record LabGroup(string Name, GroupLog Log, IReadOnlyList<string> Tags, IReadOnlyList<string> Roles, IReadOnlyList<int> Pids);

/// <summary>A group's member as `hactl status --json` reports it on a node.</summary>
/// <param name="HostPid">its pid on the node (the node's pid namespace)</param>
public sealed record LabMember(int Pid, long HostPid);

/// <summary>A finished `hactl migrate --json`.</summary>
public sealed record LabMove(string From, string To, int Rounds, long Bytes, double FrozenMs, double DurationMs);

/// <summary>
/// `hactl migrate` between the nodes of a lab, with what every move must show: the group runs on the
/// target with the same pids, its standby there is the source and in sync from the start, nothing of
/// it is left on the source (its status, and the node's /proc), and its counters go on unbroken.
/// </summary>
public static class LabMigration
{
    /// <summary>The group's members on <paramref name="node"/>, by `hactl status GROUP --json` there.</summary>
    /// <remarks>None where the node's agent does not know the group.</remarks>
    public static async Task<IReadOnlyList<LabMember>> Members(LabSession lab, string node, string group)
    {
        var status = await lab.On(lab.Node(node)).Run("status", group);
        if (status.ExitCode != 0 && status.Stderr.Contains($"unknown group {group}", StringComparison.Ordinal))
        {
            return [];
        }
        return status.Ok().Json.Array("groups").SelectMany(g => g.Array("members"))
            .Select(m => new LabMember((int)m.Long("pid")!.Value, m.Long("hostPid")!.Value)).OrderBy(m => m.Pid).ToList();
    }

    /// <summary>Waits until the group has <paramref name="count"/> members on <paramref name="node"/>; returns them.</summary>
    public static async Task<IReadOnlyList<LabMember>> WaitForMembers(LabSession lab, string node, string group, int count)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            var members = await Members(lab, node, group);
            if (members.Count == count)
            {
                return members;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"timed out waiting for {count} processes of {group} on {node}; there are {members.Count}");
            }
            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>
    /// Starts `hactl migrate GROUP --to TO` on FROM's agent and returns it, still running, once FROM
    /// committed a round and TO received (part of) one: the moment to inject a fault.
    /// </summary>
    public static async Task<Task<HactlResult>> StartUntilTheFirstRoundArrives(LabSession lab, string group, string from, string to)
    {
        var staging = Path.Combine(lab.Node(to).GroupDir(group), "staging");
        var committed = Path.Combine(lab.Node(from).GroupDir(group), "checkpoints");
        var before = NewestCommitted(committed);
        var migrate = lab.On(lab.Node(from)).Run("migrate", group, "--to", to);
        // A round reaches the target while it is written: the fault waits for the source's commit of
        // one too, so that the group has a checkpoint of the migration's to be recovered from.
        await LabSession.WaitUntil(
            () => migrate.IsCompleted
                  || (string.CompareOrdinal(NewestCommitted(committed), before) > 0
                      && (NewestCommitted(Path.Combine(lab.Node(to).GroupDir(group), "checkpoints")) is not null
                          || (Directory.Exists(staging) && Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories).Any(f => new FileInfo(f).Length > 0)))),
            $"{from} committing the first round and {to} receiving it");
        Assert.False(migrate.IsCompleted, $"the migration ended before the fault: {(migrate.IsCompleted ? migrate.Result.ToString() : "")}");
        return migrate;
    }

    // The newest committed checkpoint id in a group's checkpoints directory, or null.
    private static string? NewestCommitted(string checkpoints) =>
        Directory.Exists(checkpoints)
            ? Directory.EnumerateDirectories(checkpoints).Where(d => File.Exists(Path.Combine(d, "manifest.json"))).Select(Path.GetFileName).Max(StringComparer.Ordinal)
            : null;

    /// <summary>Waits until each of the group's tags has printed <paramref name="n"/> lines after <paramref name="mark"/>.</summary>
    public static async Task WaitForCounts(LabGroup group, int n, long mark, string where)
    {
        foreach (var tag in group.Tags)
        {
            await LabSession.WaitUntil(() => group.Log.Counts(tag, mark).Count >= n, $"{n} \"{tag}\" lines of {group.Name} {where}", () => group.Log.Tail(10));
        }
    }

    /// <summary>
    /// hactl migrate GROUP --to TO on FROM's agent, then the checks of a move; returns the figures
    /// migrate reported.
    /// </summary>
    public static async Task<LabMove> Move(LabSession lab, LabGroup group, string from, string to)
    {
        var before = await Members(lab, from, group.Name);
        group.Log.FollowTo(lab.Node(to).Log(group.Name).Path);
        var json = (await lab.On(lab.Node(from)).Run("migrate", group.Name, "--to", to)).Ok().Json;
        // Right away, before anything else asks the target: its standby (the source) holds every
        // checkpoint the source sent, so the stream back is in sync, or at most catching up with
        // a checkpoint taken there since; never "none replicated yet", never refused.
        var replication = (await lab.On(lab.Node(to)).Run("status", group.Name)).Ok().Json.Array("groups").Single().Prop("replication");
        var move = new LabMove(from, to, (int)(json.Long("rounds") ?? 0), json.Long("bytes") ?? 0,
            json.GetProperty("frozenMs").GetDouble(), json.GetProperty("durationMs").GetDouble());
        lab.Note($"migrate {group.Name} {from} -> {to}: {move.Rounds} rounds, {move.Bytes} bytes, frozen {move.FrozenMs:F0} ms, " +
                 $"whole {move.DurationMs:F0} ms; replication on {to} right after: {replication}");
        Assert.Equal(to, json.Str("to"));
        Assert.Equal(group.Pids.Count, json.GetProperty("members").GetInt32());
        // Every round holds pages the group wrote since the one before, whoever sent it (the migration,
        // or the group's standby stream when the target is its standby).
        Assert.True(move.Bytes > 0, $"migrate reports the bytes moved over the link: {json}");
        AssertStandbyInSync(replication, from, group.Name);

        var after = await Members(lab, to, group.Name);
        Assert.Equal(group.Pids, after.Select(m => m.Pid));
        Assert.Empty(await Members(lab, from, group.Name));
        await AssertGoneFrom(lab, from, group, before);

        var mark = group.Log.Length;
        await WaitForCounts(group, 3, mark, $"on {to}");
        return move;
    }

    private static void AssertStandbyInSync(JsonElement? replication, string standby, string group)
    {
        if (replication is not { ValueKind: JsonValueKind.Object } r)
        {
            throw new Xunit.Sdk.XunitException($"{group} has no standby on the target after the move: the roles did not swap");
        }
        Assert.Equal(standby, r.Str("standby"));
        var caughtUp = r.Str("state") == "in-sync" || (r.Str("state") == "behind" && r.Str("lastReplicated") is not null);
        Assert.True(caughtUp, $"right after the move, the target's standby {standby} holds every checkpoint it sent, so it is in sync: {r}");
    }

    /// <summary>
    /// Nothing of the group runs on <paramref name="node"/>: no process of the node has the pid (on
    /// the node) that one of its members had there, and no us-init of the group is left.
    /// </summary>
    public static async Task AssertGoneFrom(LabSession lab, string node, LabGroup group, IReadOnlyList<LabMember> hadThere)
    {
        var processes = await lab.ProcessesIn(node);
        var init = $"us-init --group {group.Name} ";
        var left = processes.Where(p => hadThere.Any(m => m.HostPid == p.Pid) || p.CommandLine.Contains(init, StringComparison.Ordinal)).ToList();
        Assert.True(left.Count == 0, $"processes of {group.Name} left on {node}:\n{string.Join('\n', left)}");
    }

    /// <summary>Every "TAG N" line of the group's log, from the first: N, N+1, N+2, ... with no gap and no repeat.</summary>
    public static void AssertUnbroken(LabGroup group)
    {
        foreach (var tag in group.Tags)
        {
            var counts = group.Log.Counts(tag, 0);
            var broken = counts.Zip(counts.Skip(1)).FirstOrDefault(p => p.Second != p.First + 1);
            Assert.True(broken == default,
                $"\"{tag}\" of {group.Name} went from {broken.First} to {broken.Second}: a move lost or repeated work; last: {string.Join(' ', counts.TakeLast(30))}");
        }
        Assert.Null(group.Log.FirstFail());
    }

    /// <summary>Each member checks itself (SIGUSR1 inside <paramref name="node"/>, where the group runs): memory, pipes, parents.</summary>
    public static async Task Verify(LabSession lab, string node, LabGroup group) =>
        await lab.VerifyInNode(node, (await Members(lab, node, group.Name)).Select(m => m.HostPid), group.Roles, group.Log);

    /// <summary>Bytes of the files under the lab's directory (state directories with their checkpoints, logs).</summary>
    public static long DiskUse(LabSession lab)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return new DirectoryInfo(lab.Dir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0 })
                    .Sum(f => f.Exists ? f.Length : 0);
            }
            catch (IOException) when (attempt < 5)
            {
                // A staging directory or a merge's file went away while it was being counted.
            }
        }
    }

    public static string GiB(long bytes) => (bytes / (double)(1L << 30)).ToString("F1", CultureInfo.InvariantCulture) + " GiB";
}
