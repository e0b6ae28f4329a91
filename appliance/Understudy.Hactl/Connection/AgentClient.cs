using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Understudy.GuestAgent.Contracts;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Connection;

/// <summary>
/// A gRPC connection to the guest agent over its Unix socket. Every call goes through
/// <see cref="CallAsync{T}"/>, which turns transport and RPC failures into one-line errors.
/// </summary>
public sealed class AgentClient : IDisposable
{
    private readonly GrpcChannel _channel;

    private AgentClient(AgentEndpoint endpoint, GrpcChannel channel)
    {
        Endpoint = endpoint;
        _channel = channel;
        Api = new Agent.AgentClient(channel);
        AvailabilityApi = new Availability.AvailabilityClient(channel);
        MigrationsApi = new Migrations.MigrationsClient(channel);
    }

    public AgentEndpoint Endpoint { get; }

    /// <summary>The generated client; call it through <see cref="CallAsync{T}"/>.</summary>
    public Agent.AgentClient Api { get; }

    /// <summary>The availability API (policies, supervised groups, events); call it through <see cref="CallAvailabilityAsync{T}"/>.</summary>
    public Availability.AvailabilityClient AvailabilityApi { get; }

    /// <summary>The migration API (moving a live group to another node); call it through <see cref="CallMigrationsAsync{T}"/>.</summary>
    public Migrations.MigrationsClient MigrationsApi { get; }

    public static AgentClient Connect(AgentEndpoint endpoint)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(endpoint.SocketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = 64 * 1024 * 1024,
        });
        return new AgentClient(endpoint, channel);
    }

    /// <summary>Connects to the agent named by --agent, $HACTL_AGENT or the default socket.</summary>
    public static AgentClient Connect(string? agentOption) => Connect(AgentEndpoint.Resolve(agentOption));

    /// <summary>
    /// Runs one call. <paramref name="what"/> names the operation for error lines, for example
    /// "cannot checkpoint group web".
    /// </summary>
    public async Task<T> CallAsync<T>(string what, Func<Agent.AgentClient, Task<T>> call, CancellationToken ct)
    {
        EnsureSocketExists();
        try
        {
            return await call(Api);
        }
        catch (RpcException e) when (!ct.IsCancellationRequested)
        {
            throw RpcErrors.ToHactl(what, Endpoint, e);
        }
    }

    /// <summary>Like <see cref="CallAsync{T}"/>, for the availability API.</summary>
    public Task<T> CallAvailabilityAsync<T>(string what, Func<Availability.AvailabilityClient, Task<T>> call, CancellationToken ct) =>
        CallAsync(what, _ => call(AvailabilityApi), ct);

    /// <summary>Like <see cref="CallAsync{T}"/>, for the migration API.</summary>
    public Task<T> CallMigrationsAsync<T>(string what, Func<Migrations.MigrationsClient, Task<T>> call, CancellationToken ct) =>
        CallAsync(what, _ => call(MigrationsApi), ct);

    /// <summary>Fails fast, with the standard message, when there is no socket at all (or none this user can see).</summary>
    public void EnsureSocketExists()
    {
        if (File.Exists(Endpoint.SocketPath))
        {
            return;
        }
        if (Path.GetDirectoryName(Endpoint.SocketPath) is { } dir && Directory.Exists(dir) && !CanList(dir))
        {
            throw RpcErrors.NotThisUsers(Endpoint, $"permission denied: {dir} belongs to another user");
        }
        throw RpcErrors.Unreachable(Endpoint, "no such socket");
    }

    private static bool CanList(string dir)
    {
        try
        {
            using var entries = Directory.EnumerateFileSystemEntries(dir).GetEnumerator();
            entries.MoveNext();
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    public void Dispose() => _channel.Dispose();
}
