using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// A process changes its credentials through glibc, which runs the change in every thread of
/// the process, the interceptor's checkpoint thread included, and waits for each to answer.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CredentialsTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public CredentialsTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    // The restored checkpoint thread used to block every signal, glibc's own included, so the
    // first setegid() after a restore waited forever. wl_counter calls it before each VERIFY.
    [Fact, Trait("Category", "Integration")]
    public async Task AfterEachRestore_SetegidReturns_CounterVerifies()
    {
        await using var g = _fx.OpenGroup("creds", _out);
        string[] tags = ["count"], roles = ["counter"];
        var launched = await g.Launch("counter", Repo.Workload("wl_counter"));
        // Its SIGUSR1 handler is set once main runs, after it joined: its first count says so.
        await g.WaitForCounts("count", 1, 0);
        await g.Verify([launched], roles);
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            await g.KillMembers(ck.Members);
            await g.RestoreAndVerify(ck, tags, roles);
        }
    }

    // Capabilities and the keep-capabilities flag belong to each thread. setpriv keeps its
    // capabilities across the uid change in its own thread only, and glibc then makes every
    // thread change its gid: the checkpoint thread, left without them, failed, and glibc
    // killed the program with SIGABRT at launch. The interceptor now makes the checkpoint
    // thread follow each such change. (Its checkpoints and restores: the next test.)
    [Fact, Trait("Category", "Integration")]
    public async Task SetprivDroppingToNobody_IsNotKilled_TheProgramRuns()
    {
        await using var g = _fx.OpenGroup("setpriv", _out);
        await g.Run("launch", g.Name, "--app", "dropped", "--",
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", Repo.Workload("wl_counter"), "dropped");
        await g.WaitForCounts("dropped count", 5, 0);
        var native = File.ReadAllText(Path.Combine(g.Dir, "native.log"));
        Assert.DoesNotContain("signal=6", native);
        Assert.DoesNotContain("could not follow", native);
    }

    // setpriv drops to nobody, then execs the counter: the new program, as nobody, cannot reach
    // the agent's member socket in its private directory. It connects to the agent's abstract
    // socket, which admits it because it runs in the group's pid namespace; it is checkpointed,
    // and restored as nobody (the host sees it so), twice.
    [Fact, Trait("Category", "Integration")]
    public async Task ProgramExecdAfterSetprivDrop_IsProtected_AndRestoredAsNobody()
    {
        await using var g = _fx.OpenGroup("setpriv-exec", _out);
        string[] tags = ["dropped count"], roles = ["counter-dropped"];
        await g.Run("launch", g.Name, "--app", "dropped", "--",
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", Repo.Workload("wl_counter"), "dropped");
        await g.WaitForCounts("dropped count", 1, 0);
        var members = await g.WaitForMembers(m => m.Count == 1 && m[0].ExecCount == 1 && m[0].State == "running", "the counter registered after its exec");
        await g.Verify(members, roles);
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            await g.KillMembers(ck.Members);
            var restored = await g.RestoreAndVerify(ck, tags, roles);
            AssertCreds(restored[0].HostPid, "65534", groups: "", capEff: "0000000000000000");
        }
    }

    // A server started as nobody forks (as PostgreSQL's postmaster forks its backends): the
    // child, as nobody, registers through the abstract socket too. Both are restored as nobody,
    // with what was queued in their pipes, twice.
    [Fact, Trait("Category", "Integration")]
    public async Task ChildForkedByAProgramRunningAsNobody_IsProtected_AndRestoredAsNobody()
    {
        await using var g = _fx.OpenGroup("setpriv-fork", _out);
        string[] tags = ["count"], roles = ["pipes-parent", "pipes-child"];
        await g.Run("launch", g.Name, "--app", "pipes", "--",
            "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", Repo.Workload("wl_pipes"));
        await g.WaitForMembers(m => m.Count == 2 && m.All(x => x.State == "running"), "parent and child registered as nobody");
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 2);
            await g.KillMembers(ck.Members);
            var restored = await g.RestoreAndVerify(ck, tags, roles);
            foreach (var member in restored)
            {
                AssertCreds(member.HostPid, "65534", groups: "", capEff: "0000000000000000");
            }
        }
    }

    // The abstract member socket is reachable by anyone: a program run as nobody outside every
    // group, with the interceptor and the group's environment, is closed at once (it runs in no
    // group's pid namespace), and the group gains no member.
    [Fact, Trait("Category", "Integration")]
    public async Task ProcessOutsideTheGroups_RunningAsNobody_IsNotAdmitted()
    {
        await using var g = _fx.OpenGroup("outsider", _out);
        await g.Launch("counter", Repo.Workload("wl_counter"));
        await g.WaitForCounts("count", 1, 0);
        var logBefore = _fx.AgentLogText().Length;
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/setpriv")
        {
            // the interceptor in the program only, once it runs as nobody (root would be trusted)
            ArgumentList =
            {
                "--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/env",
                "LD_PRELOAD=" + Path.Combine(Repo.Root, "out", "lib", "libunderstudy.so"), Repo.Workload("wl_counter"), "outsider",
            },
            RedirectStandardOutput = true,
            Environment =
            {
                ["UNDERSTUDY_COORD"] = Path.Combine(_fx.StateDir, "coord.sock"),
                ["UNDERSTUDY_GROUP"] = g.Name,
                ["UNDERSTUDY_APP"] = "outsider",
            },
        };
        using var outsider = System.Diagnostics.Process.Start(start)!;
        try
        {
            await g.WaitUntil(() => _fx.AgentLogText()[logBefore..].Contains("runs in no group's pid namespace"),
                "the agent to close the outsider's connection");
            var members = await g.Members();
            Assert.Single(members);
            Assert.Equal("counter", members[0].App);
        }
        finally
        {
            outsider.Kill();
            await outsider.WaitForExitAsync();
        }
    }

    // A worker forked by a root master drops its privileges itself (bounding set, setgroups,
    // setresgid, keep-caps, setresuid, capset, ambient set, no_new_privs), as nginx's and
    // PostgreSQL's do. Its images
    // are written into descriptors the agent opens for it (it can no longer create files in
    // the agent's staging directory), and a restore gives each of its threads back its
    // credentials: it verifies them itself (and that it cannot become root again), and the
    // host sees it run as nobody with the one capability it kept. Two rounds, the second
    // incremental.
    [Theory, Trait("Category", "Integration")]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WorkerDroppingItsOwnPrivileges_IsCheckpointed_AndRestoredAsNobody(bool keepCap)
    {
        await using var g = _fx.OpenGroup(keepCap ? "drop-keepcap" : "drop-worker", _out);
        string[] tags = ["master count", "worker count"], roles = ["master", "worker"];
        await g.Launch("privdrop", keepCap ? new[] { Repo.Workload("wl_privdrop"), "keep-cap" } : new[] { Repo.Workload("wl_privdrop") });
        await g.WaitForCounts("worker count", 1, 0);
        var members = await g.WaitForMembers(m => m.Count == 2, "master and worker");
        await g.Verify(members, roles);
        var capEff = keepCap ? $"{1L << 10:x16}" : "0000000000000000";   // CAP_NET_BIND_SERVICE
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 2);
            if (round == 2)
            {
                Assert.Equal("incremental", ck.Kind);
            }
            await g.KillMembers(ck.Members);
            var restored = await g.RestoreAndVerify(ck, tags, roles);
            var (master, worker) = (restored.MinBy(m => m.Pid)!, restored.MaxBy(m => m.Pid)!);
            AssertCreds(master.HostPid, "0", groups: null, capEff: null);
            AssertCreds(worker.HostPid, "65534", "100 65534", capEff);
            var status = Status(worker.HostPid);
            Assert.Equal("1", status["NoNewPrivs"]);
            Assert.Equal(capEff, status["CapAmb"]);
            Assert.Equal(0, Convert.ToInt64(status["CapBnd"], 16) & (1L << 21));   // CAP_SYS_ADMIN dropped
            Assert.NotEqual(0, Convert.ToInt64(status["CapBnd"], 16) & (1L << 10));
        }
    }

    // The agent restarts: every process makes a new link, and the worker, as nobody, can only
    // reach the next agent through its abstract socket. It registers again, and is checkpointed
    // and restored as nobody.
    [Fact, Trait("Category", "Integration")]
    public async Task WorkerThatDroppedItsPrivileges_RegistersWithTheNextAgent()
    {
        await using var g = _fx.OpenGroup("drop-restart", _out);
        string[] tags = ["master count", "worker count"], roles = ["master", "worker"];
        await g.Launch("privdrop", Repo.Workload("wl_privdrop"));
        await g.WaitForCounts("worker count", 1, 0);
        await g.WaitForMembers(m => m.Count == 2, "master and worker");
        await _fx.KillAgentAsync();
        await _fx.StartAgentAsync();
        await g.WaitUntil(() => _fx.AgentLogText().Contains("group.adopted"), "the next agent to take the group up");
        await g.WaitForMembers(m => m.Count == 2 && m.All(x => x.State == "running"), "master and worker registered with the next agent");
        var ck = await g.Checkpoint(tags, members: 2);
        await g.KillMembers(ck.Members);
        var restored = await g.RestoreAndVerify(ck, tags, roles);
        AssertCreds(restored.MaxBy(m => m.Pid)!.HostPid, "65534", "100 65534", "0000000000000000");
    }

    private static Dictionary<string, string> Status(int hostPid) =>
        File.ReadAllLines($"/proc/{hostPid}/status").Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1].Trim());

    /// <summary>Real, effective, saved and filesystem uids and gids are all <paramref name="id"/>.</summary>
    private static void AssertCreds(int hostPid, string id, string? groups, string? capEff)
    {
        var status = Status(hostPid);
        Assert.Equal([id, id, id, id], status["Uid"].Split('\t'));
        Assert.Equal([id, id, id, id], status["Gid"].Split('\t'));
        if (groups is not null)
        {
            Assert.Equal(groups, status["Groups"]);
        }
        if (capEff is not null)
        {
            Assert.Equal(capEff, status["CapEff"]);
            Assert.Equal(capEff, status["CapPrm"]);
        }
    }
}
