using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Tests;

/// <summary>The write side of one member connection, over a real Unix socket.</summary>
public sealed class MemberConnectionTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine("/tmp", "us-mc-" + Guid.NewGuid().ToString("N")[..8]);
    private Socket _agentSide = null!;
    private Socket _memberSide = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "s");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        _memberSide = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await _memberSide.ConnectAsync(new UnixDomainSocketEndPoint(path));
        _agentSide = await listener.AcceptAsync();
    }

    public Task DisposeAsync()
    {
        _agentSide.Dispose();
        _memberSide.Dispose();
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    // A restore sends RESUME the moment a restored process is in the member table, and the
    // interceptor reads nothing but WELCOME until WELCOME comes: a RESUME that overtook WELCOME
    // was dropped, and the restore failed after 10 s ("did not answer RESUME", seen in CI). Here
    // the registration itself sends at once, the earliest anyone it wakes could.
    [Fact]
    public async Task What_the_registration_lets_others_send_goes_out_after_WELCOME()
    {
        var connection = new MemberConnection(_agentSide, id: 1, hostPid: 1, NullLogger.Instance);
        Task? resume = null;

        await connection.RegisterAndWelcomeAsync(
            () => resume = connection.SendAsync(new ResumeCommand()), new WelcomeCommand(7), CancellationToken.None);
        await resume!;

        await using var stream = new NetworkStream(_memberSide, ownsSocket: false);
        await using var reader = new LineReader(stream);
        Assert.Equal("WELCOME 7", await reader.ReadLineAsync(CancellationToken.None));
        Assert.Equal("RESUME", await reader.ReadLineAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_closed_connection_registers_nothing()
    {
        var connection = new MemberConnection(_agentSide, id: 1, hostPid: 1, NullLogger.Instance);
        connection.Close();
        var registered = false;

        await Assert.ThrowsAsync<MemberDisconnectedException>(() =>
            connection.RegisterAndWelcomeAsync(() => registered = true, new WelcomeCommand(7), CancellationToken.None));

        Assert.False(registered);
    }
}
