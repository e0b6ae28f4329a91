using System.Text;
using System.Text.Json;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>A committed checkpoint and what the log said at its instant.</summary>
/// <param name="StdoutPos">the checkpointed file offset of the members' stdout (output.log)</param>
/// <param name="CountsAt">per count tag, the last value printed before the checkpoint</param>
public sealed record CheckpointTaken(
    string Id, string Kind, long Bytes, long StdoutPos,
    IReadOnlyDictionary<string, long> CountsAt, IReadOnlyList<Member> Members);

/// <summary>
/// One group of one test, driven through the real hactl. Disposing it stops the group
/// and kills whatever of it is left, whether the test passed or not.
/// </summary>
public sealed class GroupSession : IAsyncDisposable
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;
    private readonly HashSet<int> _pids = new();

    /// <param name="log">
    /// the group's output log when it ran under another agent first (a group restored on a standby
    /// node, or moved there): that agent's, which <see cref="TakesOver"/> continues with this one's
    /// </param>
    public GroupSession(AgentFixture fx, string name, ITestOutputHelper output, GroupLog? log = null)
    {
        _fx = fx;
        _out = output;
        Name = name;
        Log = log ?? new GroupLog(Path.Combine(fx.GroupDir(name), "output.log"));
    }

    public string Name { get; }
    public GroupLog Log { get; }
    public AgentFixture Fixture => _fx;
    public string Dir => _fx.GroupDir(Name);
    public string CheckpointsDir => Path.Combine(Dir, "checkpoints");

    /// <summary>The group is about to run under this agent, restored or moved from another: its output goes on in this agent's output.log.</summary>
    public void TakesOver() => Log.FollowTo(Path.Combine(Dir, "output.log"));
    public string StagingDir => Path.Combine(Dir, "staging");

    private void Note(string line)
    {
        try { _out.WriteLine($"[{DateTime.Now:HH:mm:ss.fff}] {line}"); }
        catch (InvalidOperationException) { } // the test already finished
    }

    // ---------------------------------------------------------------- hactl

    /// <summary>hactl ARGS --agent A --json; host pids in the reply are remembered for cleanup.</summary>
    public async Task<HactlResult> Run(params string[] args)
    {
        var r = await _fx.Hactl.WithLog(Note).Run(args);
        if (r.ExitCode == 0)
        {
            try
            {
                using var doc = JsonDocument.Parse(r.Stdout);
                lock (_pids)
                {
                    foreach (var p in _fx.Track(doc.RootElement))
                    {
                        _pids.Add(p);
                    }
                }
            }
            catch (JsonException) { }
        }
        return r;
    }

    /// <summary>`hactl launch G --app APP -- COMMAND...`; asserts the reply.</summary>
    public Task<Member> Launch(string app, params string[] command) =>
        LaunchWithEnv(app, new Dictionary<string, string>(), command);

    /// <summary>`hactl launch G --app APP OPTIONS... -- COMMAND...`; asserts the reply.</summary>
    public Task<Member> LaunchWithOptions(string app, IReadOnlyList<string> options, params string[] command) =>
        LaunchCore(app, new Dictionary<string, string>(), options, command);

    /// <summary>`hactl launch G --app APP --env NAME=VALUE... -- COMMAND...`; asserts the reply.</summary>
    public Task<Member> LaunchWithEnv(string app, IReadOnlyDictionary<string, string> env, params string[] command) =>
        LaunchCore(app, env, null, command);

    private async Task<Member> LaunchCore(string app, IReadOnlyDictionary<string, string> env, IReadOnlyList<string>? options, string[] command)
    {
        var args = new List<string> { "launch", Name, "--app", app };
        args.AddRange(options ?? []);
        foreach (var (name, value) in env)
        {
            args.AddRange(new[] { "--env", $"{name}={value}" });
        }

        args.Add("--");
        var r = (await Run(args.Concat(command).ToArray())).Ok();
        var j = r.Json;
        long pid = j.Long("pid") ?? 0, hostPid = j.Long("hostPid") ?? 0;
        if (pid <= 0 || hostPid <= 1)
        {
            throw Failure($"launch --json must report pid and hostPid:\n{r}");
        }

        if (j.Str("group") is { } g && g != Name)
        {
            throw Failure($"launch into {Name} reported group {g}:\n{r}");
        }

        return new Member((int)pid, (int)hostPid, app, null, null, null);
    }

    /// <summary>The live members of the group, from `hactl status G --json`.</summary>
    public async Task<List<Member>> Members()
    {
        var r = (await Run("status", Name)).Ok();
        var root = r.Json;
        JsonElement? group = root.Array("groups").Cast<JsonElement?>()
            .FirstOrDefault(g => g!.Value.Str("name") == Name || g.Value.Str("group") == Name);
        if (group is null && (root.Str("name") == Name || root.Str("group") == Name))
        {
            group = root;
        }

        if (group is null)
        {
            return new List<Member>();
        }

        return group.Value.Array("members").Select(Member.From).Where(m => m.IsLive).ToList();
    }

    public async Task<List<Member>> WaitForMembers(Func<List<Member>, bool> ok, string what)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        List<Member> last;
        while (true)
        {
            last = await Members();
            if (ok(last))
            {
                return last;
            }

            AssertNoFail();
            if (DateTime.UtcNow > deadline)
            {
                throw Failure($"timed out waiting for status to show {what}; members now:\n  " +
                              string.Join("\n  ", last));
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>
    /// Checkpoint ids of this group, oldest first (`hactl images list`). Ids are zero-padded
    /// sequence numbers (docs/protocol.md), so they sort as strings.
    /// </summary>
    public async Task<List<string>> CheckpointIds()
    {
        var r = await Run("images", "list", Name);
        if (r.ExitCode != 0)
        {
            r = await Run("images", "list");
        }

        r.Ok();
        return r.Json.Objects()
            .Where(o => o.Str("id") is { } id && id.Length > 0 && id.All(char.IsAsciiDigit)
                        && (o.Str("group") is null || o.Str("group") == Name))
            .Select(o => o.Str("id")!)
            .Distinct().OrderBy(id => id, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Waits until checkpoint <paramref name="id"/> is not incremental any more: the agent's
    /// background merge rewrites its files until it is merged (a full one is done at once).
    /// </summary>
    public async Task WaitUntilMerged(string id)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            var kinds = (await Run("images", "list", Name)).Ok().Json.Objects()
                .Where(o => o.Str("id") == id).Select(o => o.Str("kind")).ToList();
            if (kinds.Count == 0)
            {
                throw Failure($"images list does not show checkpoint {id}");
            }

            if (kinds[0] != "incremental")
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw Failure($"timed out waiting for the merge of checkpoint {id}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>
    /// `hactl images verify G ID`. Bad means a nonzero exit, or a reply that says
    /// ok/valid/verified: false.
    /// </summary>
    public async Task<(bool Bad, HactlResult Result)> VerifyImage(string id)
    {
        var r = await Run("images", "verify", Name, id);
        bool saysFalse = false;
        if (r.ExitCode == 0)
        {
            try
            {
                saysFalse = r.Json.Objects().Any(o => new[] { "ok", "valid", "verified" }
                    .Any(k => o.Prop(k) is { ValueKind: JsonValueKind.False }));
            }
            catch (XunitException) { }
        }
        return (r.ExitCode != 0 || saysFalse, r);
    }

    // ---------------------------------------------------------------- log

    public void AssertNoFail()
    {
        var fail = Log.FirstFail();
        if (fail is not null)
        {
            throw Failure($"a workload reported: {fail}");
        }
    }

    /// <summary>Waits for n "TAG N" lines at or after offset from; fails at once on a FAIL line.</summary>
    public Task WaitForCounts(string tag, int n, long from) =>
        WaitUntil(() => Log.Counts(tag, from).Count >= n, $"{n} \"{tag} N\" lines after offset {from}");

    public Task WaitUntil(Func<bool> ok, string what) => WaitUntil(() => Task.FromResult(ok()), what);

    /// <summary>Polls <paramref name="ok"/> (a hactl call, for example) until it holds.</summary>
    public async Task WaitUntil(Func<Task<bool>> ok, string what)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            if (await ok())
            {
                return;
            }

            AssertNoFail();
            if (DateTime.UtcNow > deadline)
            {
                throw Failure($"timed out waiting for {what}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    // ---------------------------------------------------------------- checkpoint, kill, restore

    /// <summary>
    /// Waits until status shows <paramref name="members"/> members and every tag has printed,
    /// takes a checkpoint and reads, from the image, the offset the members' stdout had at
    /// the checkpoint instant: the log up to there is what had been printed, so its last
    /// "TAG N" line is the counter at the checkpoint.
    /// </summary>
    public async Task<CheckpointTaken> Checkpoint(string[] tags, int members, bool full = false)
    {
        var before = await WaitForMembers(m => m.Count == members, $"{members} member(s)");
        foreach (var tag in tags)
        {
            await WaitForCounts(tag, 3, 0);
        }

        var args = new List<string> { "checkpoint", Name };
        if (full)
        {
            args.Add("--full");
        }

        var r = (await Run(args.ToArray())).Ok();
        var j = r.Json;
        var id = j.Str("id");
        var kind = j.Str("kind");
        long bytes = j.Long("bytes") ?? 0;
        if (string.IsNullOrWhiteSpace(id))
        {
            throw Failure($"checkpoint --json has no id:\n{r}");
        }

        if (kind is not ("full" or "incremental"))
        {
            throw Failure($"checkpoint --json kind must be full or incremental:\n{r}");
        }

        if (bytes <= 0)
        {
            throw Failure($"checkpoint --json must report the bytes it wrote:\n{r}");
        }

        if (j.Str("group") is { } g && g != Name)
        {
            throw Failure($"checkpoint of {Name} reported group {g}:\n{r}");
        }

        if (!File.Exists(Path.Combine(CheckpointsDir, id, "manifest.json")))
        {
            throw Failure($"checkpoint {id} reported, but {CheckpointsDir}/{id}/manifest.json does not exist");
        }

        long pos = await StdoutPosAt(id);
        if (pos <= 0 || pos > Log.Length)
        {
            throw Failure($"checkpoint {id} records stdout offset {pos}, but output.log is {Log.Length} bytes");
        }

        var counts = new Dictionary<string, long>();
        foreach (var tag in tags)
        {
            counts[tag] = Log.LastCount(tag, pos)
                ?? throw Failure($"no \"{tag} N\" line before offset {pos} (the stdout offset in checkpoint {id})");
        }

        Note($"checkpoint {id} ({kind}, {bytes} bytes): stdout offset {pos}, " +
             string.Join(", ", counts.Select(kv => $"last \"{kv.Key}\" {kv.Value}")));
        return new CheckpointTaken(id, kind, bytes, pos, counts, before);
    }

    /// <summary>
    /// kill -9 of every given member, as a crash would. All are stopped first, so that no
    /// survivor sees its peer vanish (a pipe's end closing) and reports that as a failure.
    /// </summary>
    public async Task KillMembers(IEnumerable<Member> members)
    {
        var pids = members.Select(m => m.HostPid).Where(p => p > 1).Distinct().ToList();
        if (pids.Count == 0)
        {
            throw Failure("no member hostPid to kill");
        }

        foreach (var p in pids)
        {
            if (Native.ReadStat(p) is not null && !ProcessSweeper.IsOurs(p))
            {
                throw Failure($"hostPid {p} is not a process started under this test's agent");
            }
        }

        ProcessSweeper.Signal(pids, Native.SIGSTOP);
        var missed = pids.Except(ProcessSweeper.Signal(pids, Native.SIGKILL)).Where(Native.IsRunning).ToList();
        if (missed.Count > 0)
        {
            throw Failure($"kill -9 was not sent to members {string.Join(", ", missed)}: not found below this test's process:\n" +
                          ProcessSweeper.DescribeSurvivors(missed));
        }

        if (!await ProcessSweeper.WaitGone(pids, Timeouts.Wait))
        {
            throw Failure($"members {string.Join(", ", pids.Where(Native.IsRunning))} still run after kill -9:\n" +
                          ProcessSweeper.DescribeSurvivors(pids));
        }

        Note($"killed -9: {string.Join(", ", pids)}");
    }

    /// <summary>
    /// Restores the group (the newest checkpoint, or <paramref name="explicitId"/> with
    /// --checkpoint), then asserts that every counter continues exactly from the checkpoint
    /// (first value after the restore is the checkpointed value plus one, then one by one),
    /// that status shows the same members with the same pids (and apps, programs, exec
    /// counts), that no workload reported FAIL, and that each role verifies itself.
    /// </summary>
    public async Task<List<Member>> RestoreAndVerify(CheckpointTaken ck, string[] tags, string[] roles,
        bool explicitId = false)
    {
        long mark = Log.Length;
        var args = new List<string> { "restore", Name };
        if (explicitId)
        {
            args.AddRange(new[] { "--checkpoint", ck.Id });
        }

        var r = (await Run(args.ToArray())).Ok();
        if (r.Json.Str("id") is { } restoredId && restoredId != ck.Id)
        {
            throw Failure($"restore reported checkpoint {restoredId}, expected {ck.Id}:\n{r}");
        }

        foreach (var tag in tags)
        {
            await WaitUntil(() =>
            {
                if (Log.Length < mark)
                {
                    throw Failure($"output.log shrank across the restore (from {mark} to {Log.Length} bytes): " +
                                  "the applications' output must be appended to, never rewritten");
                }

                return Log.Counts(tag, mark).Count >= 5;
            }, $"5 \"{tag} N\" lines after the restore (offset {mark})");
        }

        foreach (var tag in tags)
        {
            var after = Log.Counts(tag, mark);
            long saved = ck.CountsAt[tag], expected = saved + 1;
            if (after[0] != expected)
            {
                var why = after[0] == 1 ? "it started again from the beginning"
                    : after[0] <= saved ? "values printed before the checkpoint came again (or the stdout offset in the image is later than its memory)"
                    : "values were skipped";
                throw Failure($"\"{tag}\" continued with {after[0]} after the restore of {ck.Id}, but the checkpoint " +
                              $"had printed {saved} (at stdout offset {ck.StdoutPos}), so the next value must be {expected}: {why}");
            }
            for (int i = 1; i < after.Count; i++)
            {
                if (after[i] != after[i - 1] + 1)
                {
                    throw Failure($"\"{tag}\" went from {after[i - 1]} to {after[i]} after the restore of {ck.Id}");
                }
            }

            Note($"\"{tag}\" continues: checkpoint {saved}, after restore {string.Join(" ", after.Take(5))} ...");
        }
        AssertNoFail();

        var members = await WaitForMembers(m => m.Count == ck.Members.Count, $"{ck.Members.Count} member(s) after restore");
        var want = ck.Members.OrderBy(m => m.Pid).ToList();
        var got = members.OrderBy(m => m.Pid).ToList();
        if (!want.Select(m => m.Pid).SequenceEqual(got.Select(m => m.Pid)))
        {
            throw Failure($"pids differ after restore: checkpointed {string.Join(",", want.Select(m => m.Pid))}, " +
                          $"now {string.Join(",", got.Select(m => m.Pid))}");
        }

        for (int i = 0; i < want.Count; i++)
        {
            var (w, g) = (want[i], got[i]);
            if (w.App is not null && g.App is not null && w.App != g.App)
            {
                throw Failure($"pid {w.Pid}: app was {w.App}, is {g.App} after restore");
            }

            if (w.Program is not null && g.Program is not null && w.Program != g.Program)
            {
                throw Failure($"pid {w.Pid}: program was {w.Program}, is {g.Program} after restore");
            }

            if (w.ExecCount is not null && g.ExecCount is not null && w.ExecCount != g.ExecCount)
            {
                throw Failure($"pid {w.Pid}: execCount was {w.ExecCount}, is {g.ExecCount} after restore");
            }
        }

        await Verify(members, roles);
        return members;
    }

    /// <summary>Whether output.log holds a line containing text.</summary>
    public bool OutputContains(string text) => Log.Lines().Any(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>SIGUSR2 to every member of the group (wl_dirty: rewrite its share of pages now).</summary>
    public async Task SignalMembersUsr2()
    {
        var pids = (await Members()).Select(m => m.HostPid).Where(p => p > 1).Distinct().ToList();
        foreach (var p in pids)
        {
            if (!ProcessSweeper.IsOurs(p))
            {
                throw Failure($"hostPid {p} is not a running process started under this test's agent");
            }
        }

        ProcessSweeper.Signal(pids, Native.SIGUSR2);
    }

    /// <summary>SIGUSR1 to every member; each role must answer "VERIFY OK ROLE".</summary>
    public async Task Verify(IEnumerable<Member> members, string[] roles)
    {
        long mark = Log.Length;
        var pids = members.Select(m => m.HostPid).Where(p => p > 1).Distinct().ToList();
        foreach (var p in pids)
        {
            if (!ProcessSweeper.IsOurs(p))
            {
                throw Failure($"hostPid {p} is not a running process started under this test's agent");
            }
        }

        ProcessSweeper.Signal(pids, Native.SIGUSR1);
        foreach (var role in roles)
        {
            await WaitUntil(() => Log.Verified(role, mark).Count > 0, $"\"VERIFY OK {role}\" after SIGUSR1");
        }

        AssertNoFail();
        Note($"verified: {string.Join(", ", roles)}");
    }

    /// <summary>
    /// The checkpointed offset of the members' stdout (fd 1 or 2 on output.log): from
    /// `hactl images inspect --json`, or else from the .meta images themselves. With
    /// O_APPEND, each member's offset is where its last write before the checkpoint ended;
    /// the largest is still before anything written after the checkpoint.
    /// </summary>
    public async Task<long> StdoutPosAt(string id)
    {
        var dir = Path.Combine(CheckpointsDir, id);
        foreach (var args in new[] { new[] { "images", "inspect", Name, id }, new[] { "images", "inspect", dir } })
        {
            var r = await Run(args);
            if (r.ExitCode != 0)
            {
                continue;
            }

            JsonElement j;
            try { j = r.Json; }
            catch (XunitException) { continue; }
            long best = -1;
            foreach (var o in j.Objects())
            {
                long? fd = o.Long("fd");
                long? pos = o.Long("pos") ?? o.Long("offset") ?? o.Long("position");
                if (fd is not (1 or 2) || pos is null)
                {
                    continue;
                }

                var path = o.Str("path");
                var kind = o.Str("kind");
                bool isLog = path is not null
                    ? path.EndsWith("output.log", StringComparison.Ordinal)
                    : kind is null || kind == "1" || kind.Contains("file", StringComparison.OrdinalIgnoreCase);
                if (isLog)
                {
                    best = Math.Max(best, pos.Value);
                }
            }
            if (best >= 0)
            {
                return best;
            }
        }

        long fromMeta = -1;
        if (Directory.Exists(dir))
        {
            foreach (var meta in Directory.EnumerateFiles(dir, "*.meta"))
            {
                foreach (var fd in MetaReader.ReadFds(meta))
                {
                    if (fd.Fd is 1 or 2 && fd.Kind == 1 && (fd.Path.Length == 0 || fd.Path.EndsWith("output.log", StringComparison.Ordinal)))
                    {
                        fromMeta = Math.Max(fromMeta, (long)fd.Pos);
                    }
                }
            }
        }

        if (fromMeta >= 0)
        {
            return fromMeta;
        }

        throw Failure($"cannot find the stdout offset (fd 1 on output.log) in checkpoint {id}: " +
                      "neither `images inspect --json` nor the .meta images show it");
    }

    // ---------------------------------------------------------------- failures and cleanup

    public XunitException Failure(string message) => new($"group {Name}: {message}\n{Diagnostics()}");

    public string Diagnostics()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"--- {Log.Path} (last 40 lines)").AppendLine(Log.Tail(40));
        var native = new GroupLog(Path.Combine(Dir, "native.log"));
        sb.AppendLine($"--- {native.Path} (last 20 lines)").AppendLine(native.Tail(20));
        sb.AppendLine($"--- agent log (last 30 lines)").AppendLine(_fx.AgentLogTail(30));
        if (!_fx.AgentRunning)
        {
            sb.AppendLine("--- the agent is not running");
        }

        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (_fx.AgentRunning)
        {
            try { await _fx.Hactl.WithLog(Note).Run(new[] { "stop", Name }, timeout: Timeouts.Cleanup); }
            catch (TimeoutException e) { Note(e.Message); }
        }
        List<int> pids;
        lock (_pids)
        {
            pids = _pids.ToList();
        }

        var left = pids.Where(Native.IsRunning).ToList();
        if (left.Count > 0)
        {
            ProcessSweeper.Signal(left, Native.SIGKILL);
            if (!await ProcessSweeper.WaitGone(left, Timeouts.Cleanup))
            {
                Note($"still running after kill -9 at clean-up:\n{ProcessSweeper.DescribeSurvivors(left)}");
            }
        }
        ProcessSweeper.ReapZombies();
        Note($"output.log tail:\n{Log.Tail(15)}");
    }
}
