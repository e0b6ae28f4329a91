using Xunit.Abstractions;

namespace Understudy.Lab.Tests;

/// <summary>
/// A group restored on another node writes into that node's files: its processes' stdout and
/// stderr go to the restoring node's STATE/groups/GROUP/output.log, and their interceptors log to
/// that node's native.log and hand both paths to the programs they exec (docs/architecture.md, "A
/// restore"). The lab's nodes have state directories of their own on one filesystem, so a group
/// that kept the source's paths would still write into the source's files, unseen.
/// </summary>
public sealed class LabOutputPathTests(ITestOutputHelper output)
{
    private const string A = "node-a", B = "node-b";

    /// <summary>
    /// bash printing "loop count N" every 0.2 s: a read with a timeout on the FIFO $2, which no one
    /// writes (no short-lived child, whose exit during a checkpoint would abort it). Each time the file
    /// $1 holds a new word TAG, it forks a child that execs another bash printing "TAG count N
    /// output=... log=..." with the output log and native log its environment names.
    /// </summary>
    private const string Loop = """
        [ -p "$2" ] || mkfifo "$2"; exec {keep}<> "$2"; i=0; seen=
        pause() { read -t 0.2 -u "$1"; [ $? -gt 128 ] || { echo "FAIL loop: a read of 0.2 s returned at once"; exit 3; }; }
        while :; do
          echo "loop count $i"; i=$((i+1)); tag=
          [ -f "$1" ] && read -r tag < "$1"
          if [ -n "$tag" ] && [ "$tag" != "$seen" ]; then
            seen=$tag
            /bin/bash -c "$(declare -f pause)"'; i=0; while :; do echo "$0 count $i output=$UNDERSTUDY_OUTPUT log=$UNDERSTUDY_LOG"; i=$((i+1)); pause $1; done' "$tag" $keep &
          fi
          pause $keep
        done
        """;

    [Fact, Trait("Category", "Integration")]
    public Task MovedThenFailedOver_TheGroupWritesIntoTheFilesOfTheNodeItRunsOn() => LabLeftovers.LeavesNothingBehind(output, nodes: 2, async (lab, _, _) =>
    {
        const string name = "paths";
        var (a, b) = (lab.Node(A), lab.Node(B));
        var (trigger, fifo) = (Path.Combine(lab.Dir, "exec-a-child"), Path.Combine(lab.Dir, "pause.fifo"));
        var onA = lab.On(a);
        (await onA.Run("launch", name, "--app", "counter", "--", Repo.Workload("wl_counter"), "c")).Ok();
        (await onA.Run("launch", name, "--app", "paths", "--", Repo.Workload("wl_output_path"))).Ok();
        (await onA.Run("launch", name, "--app", "loop", "--", "/bin/bash", "-c", Loop, "loop", trigger, fifo)).Ok();
        await LabSession.WaitForCount(a, name, "c count", 3);
        await LabSession.WaitForCount(a, name, "loop count", 3);

        // node-a -> node-b, live; then the loop forks and execs a child there.
        (await onA.Run("migrate", name, "--to", B)).Ok();
        await File.WriteAllTextAsync(trigger, "first\n");
        AssertWritesOnlyOn(lab, name, "first", runsOn: b, ranOn: a, await LinesWhere(lab, name, "first", runsOn: b, ranOn: a, marks: (0, 0)));
        await VerifyPaths(lab, name, b, members: 4); // the counter, wl_output_path, bash and its child

        // node-b crashes; node-a, its standby since the move, restores the group from its copy, where
        // the loop forks and execs another child.
        var onB = lab.On(b);
        var id = (await onB.Run("checkpoint", name)).Ok().Json.Str("id")!;
        await StandbyReplication.WaitInSync(onB, name, id);
        var marks = (a.Log(name).Length, NativeLog(a, name).Length);
        (await lab.Lab("crash", lab.Dir, B)).Ok();
        Assert.Equal(id, (await onA.Run("restore", name)).Ok().Json.Str("id"));
        await File.WriteAllTextAsync(trigger, "second\n");
        AssertWritesOnlyOn(lab, name, "second", runsOn: a, ranOn: b, await LinesWhere(lab, name, "second", runsOn: a, ranOn: b, marks));
        await VerifyPaths(lab, name, a, members: 5); // and the child exec'd here
        (await onA.Run("stop", name)).Ok();
    });

    /// <summary>
    /// wl_output_path on <paramref name="node"/> checks itself (SIGUSR1): a program it execs now is given
    /// that node's output log and native log, and writes into that output log. Returns once the check's
    /// process is gone (its exit during a checkpoint would abort it) and the group has
    /// <paramref name="members"/> again.
    /// </summary>
    private static async Task VerifyPaths(LabSession lab, string group, LabNode node, int members)
    {
        var paths = (await lab.On(node).Run("status", group)).Ok().Json.Array("groups").SelectMany(g => g.Array("members"))
            .Single(m => m.Str("app") == "paths");
        var log = node.Log(group);
        await lab.VerifyInNode(node.Name, [paths.Long("hostPid")!.Value], ["output-path"], log);
        Assert.Equal($"VERIFY OK output-path output={log.Path} log={NativeLog(node, group).Path}", log.Verified("output-path", 0).Last());
        await LabMigration.WaitForMembers(lab, node.Name, group, members);
    }

    private static GroupLog NativeLog(LabNode node, string group) => new(Path.Combine(node.GroupDir(group), "native.log"));

    /// <summary>
    /// Once the group was restored on <paramref name="runsOn"/>: 3 lines of each tag in its output.log
    /// after <paramref name="marks"/> (its output.log and native.log offsets before the restore), and
    /// what both nodes' logs hold then.
    /// </summary>
    private static async Task<Written> LinesWhere(LabSession lab, string group, string child, LabNode runsOn, LabNode ranOn, (long Output, long Native) marks)
    {
        var left = (Output: ranOn.Log(group).Length, Native: NativeLog(ranOn, group).Length);
        var log = runsOn.Log(group);
        foreach (var tag in new[] { "c count", "loop count", $"{child} count" })
        {
            await LabSession.WaitUntil(() => log.Counts(tag, marks.Output).Count >= 3,
                $"3 \"{tag}\" lines in {runsOn.Name}'s output.log after the restore there", () => $"{runsOn.Name}:\n{log.Tail(5)}\n{ranOn.Name}:\n{ranOn.Log(group).Tail(5)}");
        }
        lab.Note($"{group} on {runsOn.Name}:\n{log.Tail(6)}");
        return new Written(log.Lines(marks.Output), NativeLog(runsOn, group).Lines(marks.Native),
            ranOn.Log(group).Lines(left.Output), NativeLog(ranOn, group).Lines(left.Native), ranOn.Log(group).Lines());
    }

    private static void AssertWritesOnlyOn(LabSession lab, string group, string child, LabNode runsOn, LabNode ranOn, Written w)
    {
        Assert.DoesNotContain(w.Output, l => l.StartsWith("FAIL", StringComparison.Ordinal));
        Assert.True(w.LeftOutput.Count == 0, $"{group} wrote into {ranOn.Name}'s output.log after it left: {string.Join('\n', w.LeftOutput)}");
        // us-init's own lines (exits it reported as the group left) may come late; no interceptor may write there.
        var interceptor = w.LeftNative.Where(l => l.Contains(" app=", StringComparison.Ordinal)).ToList();
        Assert.True(interceptor.Count == 0, $"{group}'s interceptors logged into {ranOn.Name}'s native.log after it left: {string.Join('\n', interceptor)}");

        // The counter goes on where it was frozen, in the new node's log.
        var before = GroupLogCounts(w.Before, "c count");
        var after = GroupLogCounts(w.Output, "c count");
        Assert.True(after.Count >= 3 && after.Zip(after.Skip(1)).All(p => p.Second == p.First + 1), $"counts on {runsOn.Name}: {string.Join(' ', after)}");
        Assert.InRange(after[0], 1, before.LastOrDefault() + 1);

        // A program exec'd after the restore is given this node's paths.
        var expected = $"output={runsOn.Log(group).Path} log={Path.Combine(runsOn.GroupDir(group), "native.log")}";
        var children = w.Output.Where(l => l.StartsWith($"{child} count ", StringComparison.Ordinal)).ToList();
        Assert.All(children, l => Assert.EndsWith(expected, l));

        // Each restored interceptor (the counter, wl_output_path, bash, and on the failover the child exec'd before) logs
        // its restore here, and the child exec'd since joins from here.
        var restored = w.Native.Count(l => l.Contains(" event=restored", StringComparison.Ordinal));
        Assert.True(restored >= 3, $"{restored} restored processes logged into {runsOn.Name}'s native.log:\n{string.Join('\n', w.Native)}");
        Assert.Contains(w.Native, l => l.Contains(" event=joined origin=exec", StringComparison.Ordinal));
        lab.Note($"{group} on {runsOn.Name}: {after.Count} counts, {children.Count} lines of the child exec'd there, {w.Native.Count} native log lines; none on {ranOn.Name}");
    }

    private static List<long> GroupLogCounts(IEnumerable<string> lines, string tag) =>
        lines.Select(l => GroupLog.CountPattern(tag).Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToList();

    /// <param name="Output">the output.log lines of the node it runs on, since the restore</param>
    /// <param name="Native">its native.log lines since the restore</param>
    /// <param name="LeftOutput">the output.log lines of the node it left, since it left</param>
    /// <param name="LeftNative">its native.log lines since</param>
    /// <param name="Before">every output.log line of the node it left</param>
    private sealed record Written(List<string> Output, List<string> Native, List<string> LeftOutput, List<string> LeftNative, List<string> Before);
}
