using Grpc.Core;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Tests.Infrastructure;
using Understudy.Images;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>
/// The coordinated checkpoint, driven through the gRPC API, with test members on the real
/// member socket answering as interceptors would.
/// </summary>
public sealed class CheckpointTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync(output);

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task A_checkpoint_of_two_members_commits_a_manifest()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        await using var worker = await TestMember.JoinAsync(_agent, "web", "worker", vpid: 3, vppid: 2);

        var checkpoint = _agent.Api.CheckpointAsync("web", full: true);
        await Task.WhenAll(db.TakePartAsync(), worker.TakePartAsync());
        var progress = await checkpoint;

        var result = progress[^1].Result;
        Assert.Equal("done", progress[^1].Phase);
        Assert.Equal(["lock", "prepare", "write", "resume", "commit", "done"], progress.Select(p => p.Phase).Distinct());
        Assert.Contains(progress, p => p is { Phase: "write", MembersDone: 2, MembersTotal: 2 });
        Assert.Equal("000001", result.Id);
        Assert.Equal("full", result.Kind);
        Assert.Equal(2, result.Members);
        Assert.True(result.FrozenMs > 0);

        var manifest = _agent.Store.Verify("web", "000001");
        Assert.Equal(result.Bytes, manifest.Bytes);
        Assert.Equal([2, 3], manifest.Members.Select(m => m.Vpid));
        var workerEntry = manifest.Members[1];
        Assert.Equal(("worker", 2, 0, "3.meta", "3.pages"), (workerEntry.App, workerEntry.Vppid, workerEntry.ExecCount, workerEntry.Meta, workerEntry.Pages));
        Assert.Equal(ImageLayout.PageSize, workerEntry.PagesBytes);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_agent.StagingDir("web")));

        // The group runs on: the next checkpoint is the next id.
        var second = _agent.Api.CheckpointAsync("web");
        await Task.WhenAll(db.TakePartAsync(), worker.TakePartAsync());
        Assert.Equal("000002", (await second)[^1].Result.Id);
        Assert.Equal("000002", (await _agent.Api.StatusAsync("web")).Groups[0].LastCheckpoint);
    }

    [Fact]
    public async Task A_hello_waits_while_a_checkpoint_holds_the_registration_lock()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.FreezeAsync();

        await using var late = await TestMember.ConnectAsync(_agent, "web", "late", vpid: 3);
        await late.SendHelloAsync();
        await Eventually.TrueAsync(() => _agent.Group("web").Gate.WaitingCount == 1, "the HELLO waits for the lock");
        Assert.False(late.HasUnreadData);

        await db.WriteAsync();
        await db.ResumeAsync();
        var result = (await checkpoint)[^1].Result;

        await late.ExpectAsync("WELCOME");
        Assert.Equal(1, result.Members);
        Assert.Equal([2], _agent.Store.Verify("web", result.Id).Members.Select(m => m.Vpid));
        Assert.NotNull(_agent.Group("web").Members.Find(3));
    }

    [Fact]
    public async Task A_fork_is_not_granted_during_a_checkpoint_which_waits_for_a_granted_forks_child()
    {
        await using var server = await TestMember.JoinAsync(_agent, "web", "server", vpid: 2);
        await using var worker = await TestMember.JoinAsync(_agent, "web", "worker", vpid: 5);
        await server.SendAsync("FORK_BEGIN");
        await server.ExpectAsync("GRANT");

        // The checkpoint takes the lock but must wait for the child of the granted fork.
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await Eventually.TrueAsync(() => _agent.Group("web").Gate.Mode == GateMode.Closing, "the checkpoint waits for the fork");

        // A fork asked for now is not granted until the checkpoint is over.
        await worker.SendAsync("FORK_BEGIN");
        await Eventually.TrueAsync(() => _agent.Group("web").Gate.WaitingCount == 1, "the second fork waits");
        Assert.False(server.HasUnreadData);
        Assert.False(worker.HasUnreadData);

        // The child registers in spite of the lock, and the checkpoint proceeds with it.
        await using var child = await TestMember.JoinAsync(_agent, "web", "server", vpid: 9, vppid: 2, origin: "fork");
        await server.SendAsync("FORK_END 9");
        // The waiting forker answers PREPARE first: GRANT only comes after RESUME.
        await Task.WhenAll(server.TakePartAsync(), worker.TakePartAsync(), child.TakePartAsync());
        var result = (await checkpoint)[^1].Result;
        await worker.ExpectAsync("GRANT");

        Assert.Equal(3, result.Members);
        Assert.Equal([2, 5, 9], _agent.Store.Verify("web", result.Id).Members.Select(m => m.Vpid));
        Assert.Equal(1, _agent.Group("web").Gate.PendingCount); // the worker's fork, granted after the checkpoint
    }

    [Fact]
    public async Task The_member_with_the_lowest_vpid_alone_captures_the_groups_ipc_namespace()
    {
        await using var worker = await TestMember.JoinAsync(_agent, "web", "worker", vpid: 7);
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 3);
        await using var cache = await TestMember.JoinAsync(_agent, "web", "cache", vpid: 5);

        var checkpoint = _agent.Api.CheckpointAsync("web");
        await Task.WhenAll(worker.TakePartAsync(), db.TakePartAsync(), cache.TakePartAsync());
        await checkpoint;

        Assert.Equal([true], db.CapturesIpc);
        Assert.Equal([false], worker.CapturesIpc);
        Assert.Equal([false], cache.CapturesIpc);
    }

    [Fact]
    public async Task A_member_that_dies_during_write_aborts_the_checkpoint()
    {
        var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        await using var worker = await TestMember.JoinAsync(_agent, "web", "worker", vpid: 3);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await Task.WhenAll(db.FreezeAsync(), worker.FreezeAsync());
        await db.ExpectAsync("WRITE");
        await worker.ExpectAsync("WRITE");

        await db.DisposeAsync(); // killed in the middle of WRITE

        await worker.ResumeAsync("ABORT");
        var error = await Assert.ThrowsAsync<RpcException>(() => checkpoint);
        Assert.Equal(StatusCode.Aborted, error.StatusCode);
        Assert.Equal("checkpoint of group web aborted: member 2 (db) exited during WRITE; no earlier checkpoint exists", error.Status.Detail);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_agent.StagingDir("web")));
        Assert.Empty(_agent.Store.List("web"));
        Assert.Equal(GateMode.Open, _agent.Group("web").Gate.Mode);
    }

    [Fact]
    public async Task A_failed_prepare_aborts_and_keeps_the_previous_checkpoint()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var first = _agent.Api.CheckpointAsync("web");
        await db.TakePartAsync();
        await first;

        var second = _agent.Api.CheckpointAsync("web");
        await db.ExpectAsync("PREPARE");
        await db.SendAsync("FAILED cannot stop thread 7");
        await db.ResumeAsync("ABORT");

        var error = await Assert.ThrowsAsync<RpcException>(() => second);
        Assert.Equal(StatusCode.Aborted, error.StatusCode);
        Assert.Equal(
            "checkpoint of group web aborted: member 2 (db) failed PREPARE: cannot stop thread 7; the previous checkpoint 000001 is still valid",
            error.Status.Detail);
        Assert.Equal("000001", _agent.Store.NewestId("web"));
    }

    [Fact]
    public async Task A_member_that_does_not_answer_in_time_aborts_the_checkpoint()
    {
        await using var agent = await TestAgent.StartAsync(output, o => o.PrepareTimeout = TimeSpan.FromMilliseconds(200));
        await using var db = await TestMember.JoinAsync(agent, "web", "db", vpid: 2);
        var checkpoint = agent.Api.CheckpointAsync("web");
        await db.ExpectAsync("PREPARE");

        // Never answers PREPARE; answers the ABORT that follows the timeout.
        await db.ResumeAsync("ABORT");

        var error = await Assert.ThrowsAsync<RpcException>(() => checkpoint);
        Assert.Contains("member 2 (db) did not answer PREPARE within 200 ms", error.Status.Detail);
    }

    // Under load a member answered PREPARE after its round had timed out and sent ABORT; the next
    // round took that FROZEN for its own and sent WRITE while the member ran again (between the
    // ABORT and the new PREPARE): the others were captured without it frozen, and its WRITE came
    // in the same read as ABORT and PREPARE (InterceptorLinkTests).
    [Fact]
    public async Task A_late_answer_to_an_aborted_round_is_not_taken_for_the_next_rounds()
    {
        await using var agent = await TestAgent.StartAsync(output, o => o.PrepareTimeout = TimeSpan.FromMilliseconds(300));
        await using var db = await TestMember.JoinAsync(agent, "web", "db", vpid: 2);
        await using var worker = await TestMember.JoinAsync(agent, "web", "worker", vpid: 3, vppid: 2);

        // The worker reads PREPARE but is too slow to answer it: the round times out.
        var first = agent.Api.CheckpointAsync("web");
        await db.FreezeAsync();
        await worker.ExpectAsync("PREPARE");
        await db.ResumeAsync("ABORT");
        var timedOut = await Assert.ThrowsAsync<RpcException>(() => first);
        Assert.Contains("member 3 (worker) did not answer PREPARE within 300 ms", timedOut.Status.Detail);

        // The next round starts; only then does the worker answer the old PREPARE, and the ABORT.
        var second = agent.Api.CheckpointAsync("web");
        await db.FreezeAsync();
        await worker.SendAsync("FROZEN 1");
        await worker.ResumeAsync("ABORT");
        // It cannot stop a thread for this round's PREPARE: the round fails, and WRITE went to no one.
        await worker.ExpectAsync("PREPARE");
        await worker.SendAsync("FAILED cannot stop thread 7");
        await db.ResumeAsync("ABORT");
        await worker.ResumeAsync("ABORT");
        var failed = await Assert.ThrowsAsync<RpcException>(() => second);
        Assert.Contains("member 3 (worker) failed PREPARE: cannot stop thread 7", failed.Status.Detail);

        // The round after that is taken.
        var third = agent.Api.CheckpointAsync("web");
        await Task.WhenAll(db.TakePartAsync(), worker.TakePartAsync());
        Assert.Equal("000001", (await third)[^1].Result.Id);
    }

    [Fact]
    public async Task A_checkpoint_asked_for_while_one_runs_waits_for_it_then_is_taken()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var first = _agent.Api.CheckpointAsync("web");
        await db.ExpectAsync("PREPARE");

        var second = _agent.Api.CheckpointAsync("web");
        await db.SendAsync("FROZEN 1");
        await db.WriteAsync();
        await db.ResumeAsync();
        Assert.Equal("000001", (await first)[^1].Result.Id);

        // Only now does the second one begin.
        await db.ExpectAsync("PREPARE");
        await db.SendAsync("FROZEN 1");
        await db.WriteAsync();
        await db.ResumeAsync();
        Assert.Equal("000002", (await second)[^1].Result.Id);
    }

    [Fact]
    public async Task A_registration_that_never_completes_keeps_a_checkpoint_from_starting()
    {
        await using var agent = await TestAgent.StartAsync(output, o =>
        {
            o.PrepareTimeout = TimeSpan.FromMilliseconds(100);
            o.RegistrationGrace = TimeSpan.FromMinutes(5);
        });
        await using var server = await TestMember.JoinAsync(agent, "web", "server", vpid: 2);
        await server.SendAsync("FORK_BEGIN");
        await server.ExpectAsync("GRANT");

        var error = await Assert.ThrowsAsync<RpcException>(() => agent.Api.CheckpointAsync("web"));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(
            "checkpoint of group web could not start: 1 registration(s) still in progress after 100 ms (fork by member 2); try again",
            error.Status.Detail);
        Assert.False(server.HasUnreadData);
        Assert.Equal(GateMode.Open, agent.Group("web").Gate.Mode);
        Assert.Empty(agent.Store.List("web"));
    }

    [Fact]
    public async Task Stopping_a_group_during_a_checkpoint_aborts_it()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.FreezeAsync();
        await db.ExpectAsync("WRITE");

        Assert.Equal(1, (await _agent.Api.StopAsync("web")).Killed);

        var error = await Assert.ThrowsAsync<RpcException>(() => checkpoint);
        Assert.Equal(StatusCode.Aborted, error.StatusCode);
        Assert.Contains("member 2 (db) exited during WRITE", error.Status.Detail);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_agent.StagingDir("web")));
    }

    [Fact]
    public async Task Checkpointing_an_unknown_group_is_not_found()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.CheckpointAsync("nosuch"));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("unknown group nosuch", error.Status.Detail);
    }

    [Fact]
    public async Task A_stopped_group_with_checkpoints_is_listed_as_stopped()
    {
        var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.TakePartAsync();
        await checkpoint;

        var stopped = await _agent.Api.StopAsync("web");

        Assert.Equal(1, stopped.Killed);
        Assert.True(await db.IsClosedByAgentAsync());
        await db.DisposeAsync();
        var group = Assert.Single((await _agent.Api.StatusAsync()).Groups);
        Assert.Equal(("web", "stopped", "000001"), (group.Name, group.State, group.LastCheckpoint));
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.CheckpointAsync("web"));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }
}
