using Grpc.Core;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>Registration over the real member socket.</summary>
public sealed class MemberProtocolTests(ITestOutputHelper output) : IAsyncLifetime
{
    private TestAgent _agent = null!;

    public async Task InitializeAsync() => _agent = await TestAgent.StartAsync(output);

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    [Fact]
    public async Task A_registered_member_appears_in_status()
    {
        await using var member = await TestMember.JoinAsync(_agent, "web", "db server", vpid: 2);

        var status = await _agent.Api.StatusAsync("web");

        var group = Assert.Single(status.Groups);
        Assert.Equal("web", group.Name);
        Assert.Equal("running", group.State);
        var listed = Assert.Single(group.Members);
        Assert.Equal(2, listed.Pid);
        Assert.Equal("db server", listed.App);
        Assert.Equal(Environment.ProcessId, listed.HostPid);
        Assert.Equal("running", listed.State);
        Assert.False(string.IsNullOrEmpty(listed.Program));
    }

    [Fact]
    public async Task The_state_directory_and_sockets_are_private()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_agent.StateDir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_agent.CoordSocket));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_member_leaves_when_its_connection_closes()
    {
        var member = await TestMember.JoinAsync(_agent, "web", "worker", vpid: 3);
        await member.DisposeAsync();

        await Eventually.TrueAsync(() => _agent.Group("web").Members.Count == 0, "the member left");
    }

    [Fact]
    public async Task An_unsupported_protocol_version_is_refused()
    {
        await using var member = await TestMember.ConnectAsync(_agent, "web", "app", vpid: 2);
        await member.SendHelloAsync(version: 2);

        var refused = await member.ExpectAsync("REFUSED");

        Assert.Contains("version", string.Join(' ', refused));
    }

    [Fact]
    public async Task An_exec_keeps_the_vpid_and_counts_the_exec()
    {
        var before = await TestMember.JoinAsync(_agent, "web", "shell", vpid: 4);
        await before.SendAsync("EXEC_BEGIN");
        await before.ExpectAsync("GRANT");
        // execve closes the old program's connection...
        await before.DisposeAsync();
        await Eventually.TrueAsync(() => _agent.Group("web").Members.Find(4)?.State == MemberState.Exec, "the exec is pending");

        // ...and the new program says hello with the same vpid.
        await using var after = await TestMember.JoinAsync(_agent, "web", "shell", vpid: 4, execCount: 1, origin: "exec");

        var member = Assert.Single((await _agent.Api.StatusAsync("web")).Groups[0].Members);
        Assert.Equal(4, member.Pid);
        Assert.Equal(1, member.ExecCount);
        Assert.Equal("running", member.State);
        Assert.Equal(0, _agent.Group("web").Gate.PendingCount);
    }

    [Fact]
    public async Task A_failed_fork_ends_its_pending_registration()
    {
        await using var parent = await TestMember.JoinAsync(_agent, "web", "server", vpid: 2);
        await parent.SendAsync("FORK_BEGIN");
        await parent.ExpectAsync("GRANT");
        Assert.Equal(1, _agent.Group("web").Gate.PendingCount);

        await parent.SendAsync("FORK_END -1");

        await Eventually.TrueAsync(() => _agent.Group("web").Gate.PendingCount == 0, "the fork is no longer pending");
    }

    [Fact]
    public async Task A_spawned_child_that_never_says_hello_is_dropped_after_the_grace_period()
    {
        await using var agent = await TestAgent.StartAsync(output, o => o.RegistrationGrace = TimeSpan.FromMilliseconds(50));
        await using var parent = await TestMember.JoinAsync(agent, "web", "server", vpid: 2);
        await parent.SendAsync("SPAWN_BEGIN");
        await parent.ExpectAsync("GRANT");
        await parent.SendAsync("SPAWN_END 7");

        await Eventually.TrueAsync(() => agent.Group("web").Gate.PendingCount == 0, "the spawn was dropped");
    }

    [Fact]
    public async Task Status_of_an_unknown_group_is_not_found()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _agent.Api.StatusAsync("nosuch"));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }
}
