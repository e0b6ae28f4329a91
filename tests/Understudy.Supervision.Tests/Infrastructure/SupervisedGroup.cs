using System.Text;
using System.Text.Json;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>A member as `hactl status --json` lists it.</summary>
public sealed record GroupProcess(int Pid, int HostPid, string App);

/// <summary>
/// One group of one test, driven through the real hactl. Disposing it stops the group and
/// kills whatever of it is left, whether the test passed or not.
/// </summary>
public sealed class SupervisedGroup : IAsyncDisposable
{
    private readonly SupervisionFixture _fx;
    private readonly ITestOutputHelper _out;
    private readonly HashSet<int> _hostPids = [];

    public SupervisedGroup(SupervisionFixture fx, string name, ITestOutputHelper output)
    {
        _fx = fx;
        _out = output;
        Name = name;
        Log = new GroupLog(Path.Combine(Dir, "output.log"));
    }

    public string Name { get; }
    public string Dir => Path.Combine(_fx.Agent.StateDir, "groups", Name);
    public string WorkDir => Path.Combine(_fx.TempDir, Name);
    public GroupLog Log { get; }

    private void Note(string line)
    {
        try { _out.WriteLine($"[{DateTime.Now:HH:mm:ss.fff}] {line}"); }
        catch (InvalidOperationException) { }
    }

    /// <summary>hactl ARGS --agent A --json; host pids in the reply are remembered for cleanup.</summary>
    public async Task<HactlResult> Run(params string[] args)
    {
        var result = await _fx.Hactl.WithLog(Note).Run(args);
        if (result.ExitCode == 0)
        {
            try
            {
                using var doc = JsonDocument.Parse(result.Stdout);
                lock (_hostPids)
                {
                    foreach (var pid in doc.RootElement.AllLongs("hostPid").Concat(doc.RootElement.AllLongs("initHostPid")).Where(p => p > 1))
                    {
                        _hostPids.Add((int)pid);
                    }
                }
            }
            catch (JsonException) { }
        }
        return result;
    }

    /// <summary>Writes the policy to a file and runs hactl group apply -f on it.</summary>
    public async Task<HactlResult> Apply(string yaml, string fileName = "policy.yaml")
    {
        Directory.CreateDirectory(WorkDir);
        var path = Path.Combine(WorkDir, fileName);
        await File.WriteAllTextAsync(path, yaml);
        return await Run("group", "apply", "-f", path);
    }

    public async Task<JsonElement> Status()
    {
        var root = (await Run("status", Name)).Ok().Json;
        return root.Array("groups").Single(g => g.Str("name") == Name);
    }

    public async Task<List<GroupProcess>> Members() =>
        (await Status()).Array("members")
            .Select(m => new GroupProcess((int)m.Long("pid")!, (int)m.Long("hostPid")!, m.Str("app")!))
            .OrderBy(m => m.Pid).ToList();

    public async Task<JsonElement> Show() => (await Run("group", "show", Name)).Ok().Json;

    public async Task<List<AgentEvent>> Events(long afterSeq = 0)
    {
        var root = (await Run("events", Name)).Ok().Json;
        return root.Array("events").Select(AgentEvent.From).Where(e => e.Seq > afterSeq).ToList();
    }

    /// <summary>The sequence number of the group's newest event: later ones happened after now.</summary>
    public async Task<long> Mark() => (await Events()).Select(e => e.Seq).DefaultIfEmpty(0).Max();

    /// <summary>Waits for the first event of <paramref name="type"/> after <paramref name="afterSeq"/> that satisfies <paramref name="match"/>.</summary>
    public async Task<AgentEvent> WaitForEvent(string type, long afterSeq, Func<AgentEvent, bool>? match = null)
    {
        AgentEvent? found = null;
        await WaitUntil(async () =>
        {
            found = (await Events(afterSeq)).FirstOrDefault(e => e.Type == type && (match?.Invoke(e) ?? true));
            return found is not null;
        }, $"event {type} after #{afterSeq}");
        return found!;
    }

    public async Task<List<AgentEvent>> WaitForEvents(string type, long afterSeq, int count)
    {
        List<AgentEvent> found = [];
        await WaitUntil(async () =>
        {
            found = (await Events(afterSeq)).Where(e => e.Type == type).ToList();
            return found.Count >= count;
        }, $"{count} {type} events after #{afterSeq}");
        return found;
    }

    public async Task WaitUntil(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw Failure($"timed out waiting for {what}");
            }

            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>Waits until the group's output has <paramref name="n"/> "TAG N" lines after byte <paramref name="from"/>.</summary>
    public Task WaitForCounts(string tag, int n, long from) =>
        WaitUntil(() => Task.FromResult(Log.Counts(tag, from).Count >= n), $"{n} \"{tag} N\" lines after offset {from}");

    /// <summary>
    /// The offset of the members' stdout (output.log, O_APPEND) that checkpoint
    /// <paramref name="id"/> recorded: everything before it was printed before the checkpoint.
    /// </summary>
    public async Task<long> StdoutOffset(string id)
    {
        var inspect = (await Run("images", "inspect", Name, id)).Ok().Json;
        var offsets = inspect.Objects()
            .Where(o => o.Long("fd") is 1 or 2 && (o.Str("path")?.EndsWith("output.log", StringComparison.Ordinal) ?? false))
            .Select(o => o.Long("pos") ?? o.Long("offset") ?? o.Long("position"))
            .OfType<long>()
            .ToList();
        return offsets.Count > 0 ? offsets.Max() : throw Failure($"checkpoint {id} shows no stdout offset on output.log");
    }

    /// <summary>kill -9 of one process, as a crash would.</summary>
    public async Task Kill9(int hostPid)
    {
        if (!ProcessSweeper.IsOurs(hostPid))
        {
            throw Failure($"host pid {hostPid} is not a process started under this test's agent");
        }

        Native.Kill(hostPid, Native.SIGKILL);
        if (!await ProcessSweeper.WaitGone([hostPid], Timeouts.Wait))
        {
            throw Failure($"host pid {hostPid} still runs after kill -9:\n" +
                          ProcessSweeper.DescribeSurvivors([hostPid]));
        }

        Note($"killed -9: host pid {hostPid}");
    }

    /// <summary>SIGUSR1 to each process; each role must answer "VERIFY OK ROLE" (the workload checks itself).</summary>
    public async Task Verify(IEnumerable<GroupProcess> processes, params string[] roles)
    {
        var mark = Log.Length;
        foreach (var p in processes)
        {
            if (ProcessSweeper.IsOurs(p.HostPid))
            {
                Native.Kill(p.HostPid, Native.SIGUSR1);
            }
        }

        foreach (var role in roles)
        {
            await WaitUntil(() => Task.FromResult(Log.Verified(role, mark).Count > 0), $"\"VERIFY OK {role}\"");
        }
    }

    public XunitException Failure(string message)
    {
        var text = new StringBuilder($"group {Name}: {message}\n");
        text.AppendLine("--- output.log (last 30 lines)").AppendLine(Log.Tail(30));
        text.AppendLine("--- agent log (last 40 lines)").AppendLine(_fx.Agent.LogTail(40));
        return new XunitException(text.ToString());
    }

    public async ValueTask DisposeAsync()
    {
        if (_fx.Agent.Running)
        {
            try { await _fx.Hactl.WithLog(Note).Run(["stop", Name], timeout: Timeouts.Cleanup); }
            catch (TimeoutException e) { Note(e.Message); }
        }
        List<int> left;
        lock (_hostPids)
        {
            left = _hostPids.Where(Native.IsRunning).ToList();
        }

        if (left.Count > 0)
        {
            ProcessSweeper.Signal(left, Native.SIGKILL);
            if (!await ProcessSweeper.WaitGone(left, Timeouts.Cleanup))
            {
                Note($"still running after kill -9 at clean-up:\n{ProcessSweeper.DescribeSurvivors(left)}");
            }
        }
        ProcessSweeper.ReapZombies();
        Note($"output.log tail:\n{Log.Tail(10)}");
    }
}
