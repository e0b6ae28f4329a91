using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Understudy.GuestAgent.Contracts.Peer;
using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Issue 11, item 4: a process that is not a member of the cluster can neither push an image to
/// an agent nor read one from it, and the agent logs the attempt with the peer's address. The
/// client here is this test process, speaking the peer protocol to node-b's real peer endpoint.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerAuthenticationTests : IClassFixture<StandbyPair>
{
    private readonly StandbyPair _pair;
    private readonly ITestOutputHelper _out;

    public PeerAuthenticationTests(StandbyPair pair, ITestOutputHelper output) => (_pair, _out) = (pair, output);

    [Fact, Trait("Category", "Integration")]
    public async Task ClientsWithoutTheClustersCertificate_AreRefused_OnPushAndRead_AndLogged()
    {
        // A group with a replicated checkpoint on node-b: there is something to read.
        await using var primary = _pair.Primary.OpenGroup("auth", _out);
        await primary.LaunchWithOptions("memory", ["--standby", StandbyPair.StandbyNode], Repo.Workload("wl_memory"), "8");
        var taken = await primary.Checkpoint(["count"], members: 1);
        await StandbyStreamingTests.WaitReplication(primary, r => r.Str("lastReplicated") == taken.Id, $"checkpoint {taken.Id} replicated");

        // The control: node-a's own credentials read it.
        using (var member = Client(CertificateOf(_pair.ClusterDir, StandbyPair.PrimaryNode)))
        {
            Assert.Equal(taken.Bytes, await ReadAsync(member, primary.Name, taken.Id));
        }

        var otherCluster = Path.Combine(_pair.Primary.TempDir, "other-cluster");
        (await new Hactl(null).Run(["cluster", "init", otherCluster, "--nodes", StandbyPair.PrimaryNode], json: false)).Ok();
        var outsiders = new (string Who, X509Certificate2? Certificate, string Logged)[]
        {
            ("no certificate", null, "showed no certificate"),
            ("another cluster's certificate", CertificateOf(otherCluster, StandbyPair.PrimaryNode), "not signed by this cluster's CA"),
        };
        foreach (var (who, certificate, logged) in outsiders)
        {
            var logBefore = _pair.Standby.AgentLogText().Length;
            using var outsider = Client(certificate);
            await AssertRefused(who, "read", () => ReadAsync(outsider, primary.Name, taken.Id));
            await AssertRefused(who, "push", () => PushAsync(certificate, "planted", "000001"));
            var log = _pair.Standby.AgentLogText()[logBefore..];
            _out.WriteLine($"{who}: node-b logged:\n{log}");
            Assert.Contains("Refused a peer connection from 127.0.0.1", log);
            Assert.Contains(logged, log);
            Assert.DoesNotContain("Receiving checkpoint", log);
            Assert.DoesNotContain("read by node", log);
        }
        Assert.False(Directory.Exists(_pair.Standby.GroupDir("planted")), "nothing may be stored for a push that was refused");
    }

    /// <summary>The connection is refused: the call fails on the wire (the handshake's refusal reaches the client as a reset).</summary>
    private static async Task AssertRefused(string who, string what, Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (Exception e) when (e is RpcException or IOException or HttpRequestException or AuthenticationException)
        {
            return;
        }
        Assert.Fail($"a client with {who} could {what}");
    }

    private static X509Certificate2 CertificateOf(string clusterDir, string node) =>
        X509Certificate2.CreateFromPemFile(Path.Combine(clusterDir, node + ".crt"), Path.Combine(clusterDir, node + ".key"));

    private GrpcChannel Client(X509Certificate2? certificate)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions =
            {
                ClientCertificates = certificate is null ? null : [certificate],
                // The server is not what is tested here: whatever it shows is accepted.
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            },
        };
        return GrpcChannel.ForAddress($"https://{_pair.StandbyAddress}", new GrpcChannelOptions { HttpHandler = handler });
    }

    /// <summary>Reads a checkpoint through Fetch; returns the bytes of its files.</summary>
    private static async Task<long> ReadAsync(GrpcChannel channel, string group, string id)
    {
        using var call = new Replication.ReplicationClient(channel).Fetch(new FetchRequest { Group = group, Id = id }, deadline: DateTime.UtcNow + Timeouts.Wait);
        long bytes = 0;
        var manifest = false;
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            bytes += call.ResponseStream.Current.Chunk?.Data.Length ?? 0;
            manifest |= call.ResponseStream.Current.BodyCase == FetchMessage.BodyOneofCase.ManifestJson;
        }
        Assert.True(manifest, "a read ends with the checkpoint's manifest");
        return bytes;
    }

    /// <summary>
    /// Pushes a chunk of a checkpoint on a push connection (docs/protocol.md, "Pushing checkpoints
    /// to a peer"), written here from the protocol's description, and reads the node's answer.
    /// </summary>
    private async Task PushAsync(X509Certificate2? certificate, string group, string id)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPEndPoint.Parse(_pair.StandbyAddress));
        await using var tls = new SslStream(client.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = StandbyPair.StandbyNode,
            ClientCertificates = certificate is null ? null : [certificate],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        await tls.WriteAsync("USPUSH1\n"u8.ToArray());
        await WriteFrame(tls, 1, new PushStart { Group = group, Id = id, Sender = "intruder" }, []);
        var data = new byte[4096];
        await WriteFrame(tls, 2, new Chunk { File = "1.meta", Offset = 0, Crc32C = Understudy.Images.Crc32C.Compute(data) }, data);
        await tls.FlushAsync();
        var answer = new byte[1];
        if (await tls.ReadAsync(answer).AsTask().WaitAsync(Timeouts.Wait) == 0)
        {
            throw new IOException("the node closed the connection");
        }
    }

    private static async Task WriteFrame(Stream stream, byte kind, IMessage header, byte[] data)
    {
        var headerBytes = header.ToByteArray();
        var frame = new byte[1 + 4 + headerBytes.Length + 4 + data.Length];
        frame[0] = kind;
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(1), headerBytes.Length);
        headerBytes.CopyTo(frame, 5);
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(5 + headerBytes.Length), data.Length);
        data.CopyTo(frame, 9 + headerBytes.Length);
        await stream.WriteAsync(frame);
    }
}
