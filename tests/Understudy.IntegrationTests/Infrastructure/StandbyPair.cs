using System.Net;
using System.Net.Sockets;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>
/// Two nodes of one cluster for a test class: the credentials of `hactl cluster init`, and two
/// real agents, node-a (the primary) and node-b (its standby), each with its own state directory,
/// serving its peer on a loopback address and knowing the other as a peer. Only this fixture
/// knows where the nodes are: the tests see two agents and a cluster directory, so that they
/// can move onto `hactl lab` nodes by changing it alone.
/// </summary>
public class StandbyPair : IAsyncLifetime
{
    public const string PrimaryNode = "node-a";
    public const string StandbyNode = "node-b";

    private readonly IReadOnlyDictionary<string, string> _standbyEnvironment;

    public StandbyPair()
        : this(new Dictionary<string, string>())
    {
    }

    /// <param name="standbyEnvironment">extra environment of the standby's agent (fault injection)</param>
    protected StandbyPair(IReadOnlyDictionary<string, string> standbyEnvironment)
    {
        _standbyEnvironment = standbyEnvironment;
    }

    public string ClusterDir { get; private set; } = "";
    public string PrimaryAddress { get; private set; } = "";
    public string StandbyAddress { get; private set; } = "";
    public AgentFixture Primary { get; private set; } = null!;
    public AgentFixture Standby { get; private set; } = null!;

    /// <summary>The standby agent's peer options, to start it again after a test killed it.</summary>
    public string[] StandbyArgs => NodeArgs(StandbyNode, StandbyAddress, PrimaryNode, PrimaryAddress);

    public async Task InitializeAsync()
    {
        ClusterDir = Path.Combine("/tmp", "us-cluster-" + Guid.NewGuid().ToString("N")[..10]);
        (await new Hactl(null).Run(["cluster", "init", ClusterDir, "--nodes", $"{PrimaryNode},{StandbyNode}"], json: false)).Ok();
        PrimaryAddress = $"127.0.0.1:{FreePort()}";
        StandbyAddress = $"127.0.0.1:{FreePort()}";
        Primary = new AgentFixture(new Dictionary<string, string>(), NodeArgs(PrimaryNode, PrimaryAddress, StandbyNode, StandbyAddress));
        Standby = new AgentFixture(_standbyEnvironment, StandbyArgs);
        await Primary.InitializeAsync();
        await Standby.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Primary.DisposeAsync();
        }
        finally
        {
            await Standby.DisposeAsync();
            try { Directory.Delete(ClusterDir, recursive: true); }
            catch (IOException) { }
        }
    }

    private string[] NodeArgs(string node, string address, string peer, string peerAddress) =>
        ["--node", node, "--cluster", ClusterDir, "--peer-listen", address, "--peer", $"{peer}={peerAddress}"];

    // A port the kernel just handed out on loopback; the agent binds it a moment later.
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>
/// A pair whose standby cuts the first push connection after 176 MiB of image data (a real reset):
/// two thirds into a 256 MiB image, so that sending it again whole would exceed 1.5 times its size.
/// </summary>
public sealed class StandbyPairWithBrokenLink : StandbyPair
{
    public const long CutAfterBytes = 176L << 20;

    public StandbyPairWithBrokenLink()
        : base(new Dictionary<string, string> { ["UNDERSTUDY_AGENT_FAULT"] = $"drop-push:{CutAfterBytes}" })
    {
    }
}
