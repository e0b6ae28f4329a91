using System.Runtime.InteropServices;
using Understudy.GuestAgent.CommandLine;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Commands;
using Understudy.Hactl.Connection;
using Understudy.Hactl.Native;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Demo;

public sealed record DemoOptions(bool Keep, bool Json, string NativeDir, string Interceptor);

/// <summary>
/// The end-to-end show: agent, launch, checkpoint, crash, restore, stop, with a private state
/// directory and an agent of its own (understudy-agent, a child of hactl).
/// </summary>
public sealed class DemoRunner(DemoOptions options)
{
    public const string Group = "demo";
    private const int Steps = 8;
    /// <summary>The checkpointed file offset of the first member's stdout (fd 1), from the image.</summary>
    private static async Task<long> StdoutOffsetAsync(AgentClient client, string checkpointId, CancellationToken ct)
    {
        var reply = await client.CallAsync("inspect the demo's checkpoint",
            api => api.InspectImageAsync(new InspectImageRequest { Group = Group, Id = checkpointId }, cancellationToken: ct).ResponseAsync, ct);
        using var doc = System.Text.Json.JsonDocument.Parse(reply.Json);
        foreach (var fd in doc.RootElement.GetProperty("members")[0].GetProperty("fds").EnumerateArray())
        {
            if (fd.GetProperty("fd").GetInt32() == 1)
            {
                return fd.GetProperty("pos").GetInt64();
            }
        }

        return long.MaxValue;
    }

    private static readonly TimeSpan RunTime = TimeSpan.FromSeconds(1.5);

    private readonly Narrator _narrator = new(options.Json, Steps);

    public async Task<DemoReport> RunAsync(CancellationToken ct)
    {
        var stateDir = Directory.CreateTempSubdirectory("understudy-demo-").FullName;
        var agentLogPath = Path.Combine(stateDir, "agent.log");
        var launched = false;
        ChildAgent? agent = null;
        AgentClient? client = null;
        try
        {
            // 1. Agent
            _narrator.Step("Starting a guest agent",
                "It coordinates the group's checkpoints and keeps the images in a private state directory.");
            var settings = new AgentRunSettings(
                ListenSocket: Path.Combine(stateDir, "agent.sock"),
                StateDir: stateDir,
                NativeDir: options.NativeDir,
                InterceptorPath: options.Interceptor,
                JsonLogs: false,
                FullEvery: AgentRunOptions.DefaultFullEvery,
                ChainLimitPercent: AgentRunOptions.DefaultChainLimitPercent,
                BackgroundMerges: true);
            agent = await ChildAgent.StartAsync(settings, agentLogPath, ct);
            client = AgentClient.Connect(agent.Endpoint);
            _narrator.Detail($"state directory: {stateDir}");
            _narrator.Detail($"listening on {agent.Endpoint.Address}; its log: {agentLogPath}");

            // 2. Launch
            var workload = ChooseWorkload();
            _narrator.Step($"Launching a counter into group '{Group}'",
                "It prints \"count N\" every 100 ms and keeps N only in memory; it runs unmodified, with the interceptor preloaded.");
            var launch = await LaunchAsync(client, workload, stateDir, ct);
            launched = true;
            _narrator.Detail(ShellQuote.Join(workload));
            _narrator.Detail($"pid {launch.Pid} in the group (host pid {launch.HostPid})");

            // 3. Let it run
            var log = new OutputLog(Path.Combine(stateDir, "groups", Group, "output.log"));
            _narrator.Step($"Letting it run for {RunTime.TotalSeconds} s",
                $"Its output goes to {log.Path}. The last lines:");
            await Task.Delay(RunTime, ct);
            var before = log.LinesSince();
            if (before.Count == 0)
            {
                throw Fail("the counter printed nothing", $"look at {log.Path} and the group's native.log");
            }

            _narrator.Output(before.TakeLast(3));

            // 4. Checkpoint
            _narrator.Step("Checkpointing the whole group",
                "Every member is frozen together, its state written to an image, then it runs on.");
            var checkpoint = await CheckpointCommand.RunAsync(client, Group, full: true, _ => { }, ct);
            // The image records where the counter's stdout stood at the checkpoint instant.
            var stdoutAtCheckpoint = await StdoutOffsetAsync(client, checkpoint.Id, ct);
            var countAtCheckpoint = OutputLog.Counts(log.LinesBefore(stdoutAtCheckpoint)).LastOrDefault();
            _narrator.Detail(CheckpointCommand.Describe(checkpoint));
            _narrator.Detail($"the image holds the counter at count {countAtCheckpoint}");

            // 5. Crash
            await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            _narrator.Step("Simulating a crash",
                "SIGKILL to every member of the group, with no warning and no chance to save anything.");
            var killed = await KillMembersAsync(client, ct);
            var lastBeforeKill = OutputLog.Counts(log.LinesSince()).LastOrDefault();
            _narrator.Detail($"killed host pid {string.Join(", ", killed)}; the last line it printed was count {lastBeforeKill}");

            // 6. Restore
            _narrator.Step($"Restoring the group from checkpoint {checkpoint.Id}",
                "The process tree is rebuilt with the same pids, and each process continues exactly where it was frozen.");
            var offset = log.Length;
            var restore = await RestoreCommand.RestoreAsync(client, Group, checkpoint.Id, force: false, ct);
            foreach (var m in restore.Members)
            {
                _narrator.Detail($"pid {m.Pid} (host pid {m.HostPid}) {m.App}: {m.State}");
            }

            // 7. Watch it continue
            _narrator.Step($"Letting it run for {RunTime.TotalSeconds} s",
                "The counter goes on from the checkpoint, not from 1. Its output since the restore:");
            await Task.Delay(RunTime, ct);
            var after = log.LinesSince(offset);
            var countsAfter = OutputLog.Counts(after);
            if (countsAfter.Count == 0)
            {
                throw Fail("the restored counter printed nothing", $"look at {log.Path} and the group's native.log");
            }

            _narrator.Output(after.Take(2));
            if (after.Count > 3)
            {
                _narrator.Detail("| ...");
            }

            if (after.Count > 2)
            {
                _narrator.Output(after.TakeLast(1));
            }

            if (countsAfter[0] <= 1 && countAtCheckpoint > 1)
            {
                throw Fail("the restored counter started again from 1 instead of continuing", "the restore did not bring back the process's memory; see the agent's log");
            }

            if (countsAfter[0] != countAtCheckpoint + 1)
            {
                throw Fail($"the restored counter resumed at count {countsAfter[0]}, not right after the checkpoint's count {countAtCheckpoint}",
                    "the restore did not bring back the process's memory exactly; see the agent's log");
            }

            _narrator.Detail($"it resumed at count {countsAfter[0]}, right after the checkpoint's count {countAtCheckpoint}");

            // 8. Stop
            _narrator.Step("Stopping the group and the agent",
                options.Keep ? $"The state directory is kept: {stateDir}" : "The private state directory is removed.");
            var stop = await StopCommand.StopAsync(client, Group, ct);
            launched = false;
            _narrator.Detail($"stopped group {stop.Group}: {Units.Count(stop.Killed, "process", "processes")} killed");

            _narrator.Done("Demo finished: the group was checkpointed, killed and restored, and it kept counting.");
            return new DemoReport
            {
                StateDir = stateDir,
                Kept = options.Keep,
                Group = Group,
                Workload = workload,
                Launch = launch,
                Checkpoint = checkpoint,
                CountAtCheckpoint = countAtCheckpoint,
                KilledHostPids = killed,
                LastCountBeforeKill = lastBeforeKill,
                Restore = restore,
                FirstCountAfterRestore = countsAfter[0],
                LastCountAfterRestore = countsAfter[^1],
                Stop = stop,
            };
        }
        catch (HactlException e)
        {
            var keep = options.Keep ? $"; the state is kept in {stateDir}" : "; 'hactl demo --keep' keeps the state directory and its logs";
            throw new HactlException($"demo failed at step {_narrator.CurrentStep} ({_narrator.CurrentTitle.ToLowerInvariant()}): {e.What}",
                e.Why, e.Todo + keep, e.ExitCode);
        }
        finally
        {
            if (launched && client is not null)
            {
                await BestEffort(() => StopCommand.StopAsync(client, Group, CancellationToken.None));
            }

            client?.Dispose();
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }

            if (!options.Keep)
            {
                await BestEffort(() => Task.Run(() => Directory.Delete(stateDir, recursive: true)));
            }
        }
    }

    private IReadOnlyList<string> ChooseWorkload()
    {
        var counter = NativePaths.CounterWorkload(options.NativeDir);
        return File.Exists(counter)
            ? [counter]
            : ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo count $i; sleep 0.1; done"];
    }

    private static async Task<LaunchResult> LaunchAsync(AgentClient client, IReadOnlyList<string> argv, string cwd, CancellationToken ct)
    {
        var request = new LaunchRequest { Group = Group, App = "counter", Cwd = cwd };
        request.Argv.AddRange(argv);
        var reply = await client.CallAsync($"cannot launch the counter in group {Group}",
            api => api.LaunchAsync(request, cancellationToken: ct).ResponseAsync, ct);
        return LaunchResult.From(reply);
    }

    private static async Task<IReadOnlyList<int>> KillMembersAsync(AgentClient client, CancellationToken ct)
    {
        var status = await StatusCommand.GetAsync(client, Group, ct);
        var pids = status.Groups.Where(g => g.Name == Group).SelectMany(g => g.Members)
            .Select(m => m.HostPid).Where(pid => pid > 0 && pid != Environment.ProcessId).ToList();
        if (pids.Count == 0)
        {
            throw Fail("the status shows no running member to kill", "see 'hactl status' and the agent's log");
        }

        foreach (var pid in pids)
        {
            if (Libc.Kill(pid, Libc.SigKill) != 0)
            {
                throw Fail($"kill -9 {pid} failed (errno {Marshal.GetLastPInvokeError()})", "run the demo as root");
            }
        }

        // Wait until the processes are gone (reaped by the group's init).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (pids.Any(pid => Directory.Exists($"/proc/{pid}")) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, ct);
        }

        return pids;
    }

    private static HactlException Fail(string why, string todo) => new("step failed", why, todo);

    private static async Task BestEffort(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception)
        {
            // Cleanup after a failure must not hide the failure itself.
        }
    }
}
