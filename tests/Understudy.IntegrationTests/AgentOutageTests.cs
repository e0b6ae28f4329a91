using System.Diagnostics;
using System.Text.Json;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 10: the applications do not depend on the agent being there. An agent stopped
/// (SIGSTOP) holds none of their forks and execs for long; a program that closes every
/// descriptor it did not open keeps its protection, or gets it back and says so; only one agent
/// uses a state directory; a group shows what runs in it, not only its members.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgentOutageTests : IClassFixture<AgentFixture>
{
    // A shell loop: every round forks and execs twice (true, sleep).
    private const string Loop = "i=0; while :; do i=$((i+1)); echo \"loop count $i\"; /bin/true; sleep 0.1; done";

    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public AgentOutageTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task AgentStoppedFor15Seconds_ForkExecLoopGoesOn_ThenTheGroupCheckpointsAndRestoresWhole()
    {
        await using var g = _fx.OpenGroup("stall", _out);
        await g.Launch("loop", "/bin/sh", "-c", Loop);
        await g.WaitForCounts("loop count", 3, 0);

        var agent = _fx.AgentPid;
        Assert.True(agent > 0, "the agent is not running");
        var stopped = Stopwatch.StartNew();
        Assert.True(Native.Kill(agent, Native.SIGSTOP), $"cannot stop the agent (pid {agent})");
        try
        {
            // The loop goes on while the agent cannot answer: each fork and exec waits at most
            // through the link's patience, and the loop's children run unregistered meanwhile.
            var before = g.Log.LastCount("loop count") ?? 0;
            await g.WaitUntil(() => (g.Log.LastCount("loop count") ?? 0) >= before + 5, "the loop to go on while the agent is stopped");
            var rest = TimeSpan.FromSeconds(15) - stopped.Elapsed;
            if (rest > TimeSpan.Zero)
            {
                await Task.Delay(rest);
            }
            Assert.True((g.Log.LastCount("loop count") ?? 0) >= before + 5);
        }
        finally
        {
            Native.Kill(agent, Native.SIGCONT);
        }

        // Once the agent is back, every process of the group registers: none is left unprotected.
        await WaitForStatus(g, s => s.Str("state") == "running" && !s.Array("unprotected").Any(), "every process of the group to be registered");

        // A checkpoint holds every process of the group, and a restore brings them all back.
        // (A child of the loop that exits in the middle of a checkpoint no longer aborts it, but one
        // that ends otherwise, killed while its image is written, still does: the next one is taken.)
        JsonElement taken = default;
        await g.WaitUntil(() =>
        {
            var r = g.Run("checkpoint", g.Name).GetAwaiter().GetResult();
            if (r.ExitCode == 0)
            {
                taken = r.Json;
                return true;
            }
            Assert.Contains("exited during", r.Stderr);
            return false;
        }, "a checkpoint of the whole group");
        var id = taken.Str("id")!;
        var members = (int)(taken.Long("members") ?? 0);
        Assert.True(members >= 1, $"checkpoint {id} has no member");
        var offset = await g.StdoutPosAt(id);
        var atCheckpoint = g.Log.LastCount("loop count", offset) ?? throw g.Failure($"no loop count before checkpoint {id}");

        (await g.Run("stop", g.Name)).Ok();
        var mark = g.Log.Length;
        var restored = (await g.Run("restore", g.Name)).Ok().Json;
        Assert.Equal(id, restored.Str("id"));
        Assert.Equal(members, restored.Array("members").Count());
        await g.WaitForCounts("loop count", 3, mark);
        Assert.Equal(atCheckpoint + 1, g.Log.Counts("loop count", mark)[0]);
    }

    [Theory, Trait("Category", "Integration")]
    [InlineData("close_range")]
    [InlineData("closefrom")]
    [InlineData("loop")]
    public async Task MemberClosesEveryDescriptorThroughLibc_StaysProtected(string mode)
    {
        await using var g = _fx.OpenGroup("daemon", _out);
        var mark = await EventMark();
        var daemon = await g.Launch("daemon", Repo.Workload("wl_daemon"), mode);
        await g.WaitUntil(() => g.OutputContains($"daemon closed {mode}"), "the daemon to close its descriptors");
        await g.WaitForCounts("daemon count", 3, 0);

        // Its link was never cut: the same registration, no event about it, nothing unprotected.
        var status = await WaitForStatus(g, s => s.Array("members").Count() == 1, "the daemon as the one member");
        Assert.Equal("running", status.Str("state"));
        Assert.Empty(status.Array("unprotected"));
        var events = await Events(g.Name, mark);
        Assert.DoesNotContain(events, e => e.Str("type") == "member.unprotected");
        Assert.Single(events, e => e.Str("type") == "member.joined");

        var ck = await g.Checkpoint(["daemon count"], members: 1);
        await g.KillMembers([daemon]);
        await g.RestoreAndVerify(ck, ["daemon count"], ["daemon"]);
    }

    [Fact, Trait("Category", "Integration")]
    public async Task MemberClosesItsLinkWithARawSystemCall_LossIsAnEvent_AndItRegistersAgain()
    {
        await using var g = _fx.OpenGroup("rawclose", _out);
        var mark = await EventMark();
        await g.Launch("daemon", Repo.Workload("wl_daemon"), "raw");
        await g.WaitUntil(() => g.OutputContains("daemon closed raw"), "the daemon to close its descriptors");

        // The system call cannot be stopped: the loss is an event, and the process makes a new link.
        var lost = await WaitForEvent(g.Name, mark, "member.unprotected");
        Assert.Equal("daemon", lost.Prop("fields")?.Str("app"));
        var again = await WaitForEvent(g.Name, mark, "member.joined", e => e.Prop("fields")?.Str("origin") == "reattach");
        Assert.Equal(lost.Prop("fields")?.Str("hostPid"), again.Prop("fields")?.Str("hostPid"));
        await WaitForStatus(g, s => s.Str("state") == "running" && s.Array("members").Count() == 1, "the daemon registered again");

        // Protected again: its checkpoints (the first one full: its tracker was lost too) restore.
        var first = await g.Checkpoint(["daemon count"], members: 1);
        await g.WaitForCounts("daemon count", 3, g.Log.Length);
        var second = await g.Checkpoint(["daemon count"], members: 1);
        Assert.Equal("full", first.Kind);
        await g.KillMembers(second.Members);
        await g.RestoreAndVerify(second, ["daemon count"], ["daemon"]);
    }

    [Fact, Trait("Category", "Integration")]
    public async Task GroupWhoseProcessesAllEnded_IsEmpty_NotRunning()
    {
        await using var g = _fx.OpenGroup("empty", _out);
        await g.Launch("brief", "/bin/sh", "-c", "sleep 0.3");
        var status = await WaitForStatus(g, s => !s.Array("members").Any() && s.Str("state") != "running", "the process to end");
        Assert.Equal("empty", status.Str("state"));
        Assert.Equal(0, status.Long("processes"));
        Assert.True(status.Long("initHostPid") > 1, $"us-init should still run:\n{status}");
    }

    [Fact, Trait("Category", "Integration")]
    public async Task SecondAgentOnTheSameStateDirectory_IsRefusedInOneLine_AndTouchesNothing()
    {
        await using var g = _fx.OpenGroup("second", _out);
        await g.Launch("counter", Repo.Workload("wl_counter"), "c");
        await g.WaitForCounts("c count", 2, 0);
        // What a checkpoint in flight would have: a second agent's clean-up after a crash would remove it.
        var staging = Path.Combine(g.StagingDir, "000099");
        Directory.CreateDirectory(staging);

        var psi = new ProcessStartInfo(Repo.Hactl) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var socket = Path.Combine(_fx.TempDir, "second.sock");
        foreach (var arg in new[] { "agent", "run", "--listen", "unix:" + socket, "--state-dir", _fx.StateDir })
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment.Remove("HACTL_AGENT");
        using var second = Process.Start(psi)!;
        ProcessSweeper.RegisterDotnetChild(second.Id);
        var stderr = second.StandardError.ReadToEndAsync();
        await second.WaitForExitAsync(new CancellationTokenSource(Timeouts.Wait).Token);
        var text = await stderr;
        _out.WriteLine(text);

        Assert.NotEqual(0, second.ExitCode);
        var last = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.Contains($"in use by another guest agent (pid {_fx.AgentPid})", last);
        Assert.DoesNotContain("   at ", text);
        Assert.True(Directory.Exists(staging), "the refused agent removed the running agent's staging directory");
        Directory.Delete(staging);

        // The first agent and its group are as they were.
        Assert.True(_fx.AgentRunning);
        var members = await g.Members();
        Assert.Equal("counter", Assert.Single(members).App);
    }

    private async Task<JsonElement> WaitForStatus(GroupSession g, Func<JsonElement, bool> ok, string what)
    {
        JsonElement last = default;
        await g.WaitUntil(() =>
        {
            var r = g.Run("status", g.Name).GetAwaiter().GetResult();
            if (r.ExitCode != 0)
            {
                return false;
            }
            last = r.Json.Array("groups").Single().Clone();
            return ok(last);
        }, what);
        return last;
    }

    private async Task<long> EventMark() =>
        (await Events(null, 0)).Select(e => e.Long("seq") ?? 0).DefaultIfEmpty(0).Max();

    private async Task<List<JsonElement>> Events(string? group, long after)
    {
        var args = group is null ? new[] { "events" } : new[] { "events", group };
        var r = (await _fx.Hactl.Run(args)).Ok();
        return r.Json.Array("events").Where(e => (e.Long("seq") ?? 0) > after).Select(e => e.Clone()).ToList();
    }

    private async Task<JsonElement> WaitForEvent(string group, long after, string type, Func<JsonElement, bool>? match = null)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            var found = (await Events(group, after)).FirstOrDefault(e => e.Str("type") == type && (match?.Invoke(e) ?? true));
            if (found.ValueKind != JsonValueKind.Undefined)
            {
                return found;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"no {type} event for group {group} within {Timeouts.Wait.TotalSeconds:0} s");
            }
            await Task.Delay(Timeouts.Poll);
        }
    }
}
