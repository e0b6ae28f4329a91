using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 9, "Sockets inside the group": each program survives two rounds of checkpoint,
// kill -9 and restore, and checks itself after each restore (counters continue exactly,
// same pids, no FAIL, VERIFY OK from every process).

internal static class SocketRounds
{
    /// <summary>
    /// Two rounds of checkpoint, kill -9 and restore of the group's members, each verified;
    /// with <paramref name="verifyAgainAfterTicks"/>, verified once more that many ticks of the
    /// parent after the restore's verification, when the workload has gone through what was
    /// queued at the checkpoint.
    /// </summary>
    public static async Task Run(GroupSession g, Member parent, string[] roles, int members,
        int verifyAgainAfterTicks = 0, string[]? tags = null)
    {
        tags ??= ["parent count", "child count"];
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members);
            Assert.Contains(ck.Members, m => m.Pid == parent.Pid);
            await g.KillMembers(ck.Members);
            var after = await g.RestoreAndVerify(ck, tags, roles);
            Assert.Equal(ck.Members.Select(m => m.Pid).Order(), after.Select(m => m.Pid).Order());
            if (verifyAgainAfterTicks > 0)
            {
                await g.WaitForCounts(tags[0], verifyAgainAfterTicks, g.Log.Length);
                await g.Verify(after, roles);
            }
        }
    }
}

[Trait("Category", "Integration")]
public sealed class TcpPairWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public TcpPairWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// A parent and its child with two TCP connections over loopback: a stream of sequenced
    /// records both ways with full send and receive queues (no byte lost or repeated, each
    /// reader checks every record), and a half-closed connection (the child shut down
    /// writing; the parent still reads its bytes one by one, then the end of the stream,
    /// and still writes). Both ends are carried over with TCP repair; a dropped connection
    /// would end the writer with SIGPIPE. A second verification 60 ticks after the restore's
    /// asks for more records than the buffers of both ends hold: what was written after the
    /// restore crossed the connection too, not only what was queued at the checkpoint.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TcpConnectionsBetweenMembers_KillRestore_StreamContinuesExactly()
    {
        await using var g = _fx.OpenGroup("tcppair", _out);
        var parent = await g.Launch("tcppair", Repo.Workload("wl_tcp_pair"));
        await SocketRounds.Run(g, parent, ["tcp-parent", "tcp-child"], members: 2, verifyAgainAfterTicks: 60);
    }
}

[Trait("Category", "Integration")]
public sealed class RecordSocketsWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public RecordSocketsWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// Unix SOCK_SEQPACKET (a socket pair, and a connection accepted from a listening socket
    /// that keeps listening) and SOCK_DGRAM pair between a parent and its child, each with
    /// records of different lengths queued (empty ones too): after each restore every read
    /// returns exactly the next whole record. A second verification 30 ticks after the
    /// restore's comes once the readers have gone through everything that was queued.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task SeqpacketAndDatagramQueues_KillRestore_BoundariesKept()
    {
        await using var g = _fx.OpenGroup("records", _out);
        var parent = await g.Launch("records", Repo.Workload("wl_records"), _fx.TempDir);
        await SocketRounds.Run(g, parent, ["records-parent", "records-child"], members: 2, verifyAgainAfterTicks: 30);
    }
}

[Trait("Category", "Integration")]
public sealed class SharedUdpPortWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public SharedUdpPortWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// A parent and two workers share UDP ports: one socket inherited by both workers, and a
    /// socket per process bound to one port with SO_REUSEPORT; and each listens on one TCP port
    /// with SO_REUSEPORT. After each restore every process still receives on every UDP socket
    /// it had and still listens, at the same ports, with the reuse options it had.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task UdpPortsUsedBySeveralProcesses_KillRestore_EveryProcessStillReceives()
    {
        await using var g = _fx.OpenGroup("udpshared", _out);
        var parent = await g.Launch("udpshared", Repo.Workload("wl_udp_shared"));
        await SocketRounds.Run(g, parent, ["udp-parent", "udp-worker1", "udp-worker2"], members: 3, tags: ["parent count", "worker1 count", "worker2 count"]);
    }
}

[Trait("Category", "Integration")]
public sealed class TcpPeerOutsideWorkloadTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public TcpPeerOutsideWorkloadTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// A client whose TCP connection goes to a server in another group: restored alone, its
    /// connection comes back dropped, as documented (TCP repair needs both ends in the group).
    /// The client checks what a program that handles EPIPE sees: a write fails with EPIPE at
    /// once, the bytes that had arrived are still read, then the stream ends; nothing hangs.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task TcpConnectionToAnotherGroup_KillRestore_ComesBackDroppedWithItsBytes()
    {
        await using var server = _fx.OpenGroup("outsrv", _out);
        await using var g = _fx.OpenGroup("outcli", _out);
        await server.Launch("server", Repo.Workload("wl_tcp_outside"), "server");
        const string portLine = "outside server port ";
        await server.WaitUntil(() => server.Log.Lines().Any(l => l.StartsWith(portLine, StringComparison.Ordinal)), "the server's port");
        string port = server.Log.Lines().First(l => l.StartsWith(portLine, StringComparison.Ordinal))[portLine.Length..];
        string[] tags = { "client count" }, roles = { "tcp-outside" };
        await g.Launch("client", Repo.Workload("wl_tcp_outside"), "client", port);

        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(tags, members: 1);
            await g.KillMembers(ck.Members);
            long mark = g.Log.Length;
            await g.RestoreAndVerify(ck, tags, roles);
            Assert.Contains(g.Log.Lines(mark), l => l.StartsWith("VERIFY OK tcp-outside connection=dropped", StringComparison.Ordinal));
        }

        server.AssertNoFail();
    }
}
