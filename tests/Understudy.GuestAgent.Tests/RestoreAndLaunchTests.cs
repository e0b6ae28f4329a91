using Grpc.Core;
using Understudy.GuestAgent.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>What restore and launch refuse before they touch anything (the native parts are not needed for that).</summary>
public sealed class RestoreAndLaunchTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync(output);

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task Restoring_a_group_without_checkpoints_is_not_found()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.RestoreAsync("web"));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Contains("has no checkpoint to restore", error.Status.Detail);
    }

    [Fact]
    public async Task A_corrupt_checkpoint_is_refused_and_the_running_group_is_untouched()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.TakePartAsync();
        var id = (await checkpoint)[^1].Result.Id;
        var pages = Path.Combine(_agent.Store.CheckpointDir("web", id), "2.pages");
        var bytes = File.ReadAllBytes(pages);
        bytes[100] ^= 0xff;
        File.WriteAllBytes(pages, bytes);

        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.RestoreAsync("web", id, force: true));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.StartsWith("restore of group web refused:", error.Status.Detail);
        Assert.DoesNotContain('\n', error.Status.Detail);
        Assert.False((await _agent.Api.VerifyImageAsync("web", id)).Ok);
        Assert.False(db.HasUnreadData);
        Assert.Equal("running", (await _agent.Api.StatusAsync("web")).Groups[0].State);
    }

    // hactl restore of a running group killed it and rolled it back, with exit code 0.
    [Fact]
    public async Task Restoring_a_running_group_is_refused_unless_forced_and_nothing_is_touched()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.TakePartAsync();
        var id = (await checkpoint)[^1].Result.Id;

        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.RestoreAsync("web", id));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Equal(
            $"group web is running (1 process): a restore would kill them and bring back checkpoint {id}; stop it first with 'hactl stop web', or pass --force",
            error.Status.Detail);
        Assert.False(db.HasUnreadData);
        Assert.NotNull(_agent.Group("web").Members.Find(2));
        Assert.Equal("running", (await _agent.Api.StatusAsync("web")).Groups[0].State);
    }

    [Fact]
    public async Task Restore_without_the_native_parts_is_refused_before_the_group_is_stopped()
    {
        await using var db = await TestMember.JoinAsync(_agent, "web", "db", vpid: 2);
        var checkpoint = _agent.Api.CheckpointAsync("web");
        await db.TakePartAsync();
        await checkpoint;

        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.RestoreAsync("web", force: true));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("us-init not found", error.Status.Detail);
        Assert.NotNull(_agent.Group("web").Members.Find(2));
    }

    [Fact]
    public async Task Launch_without_the_native_parts_says_what_is_missing()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.LaunchAsync(
            new Contracts.LaunchRequest { Group = "web", Argv = { "/bin/true" }, Cwd = "/" }));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("us-init not found at", error.Status.Detail);
    }

    [Theory]
    [InlineData("bad/name", "/bin/true")]
    [InlineData("web", "")]
    public async Task Launch_rejects_bad_requests(string group, string program)
    {
        var request = new Contracts.LaunchRequest { Group = group, Cwd = "/" };
        if (program.Length > 0)
        {
            request.Argv.Add(program);
        }
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.LaunchAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }
}
