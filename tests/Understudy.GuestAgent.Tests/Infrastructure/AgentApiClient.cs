extern alias TestClient;

using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Understudy.GuestAgent.Contracts;
using AgentClient = TestClient::Understudy.GuestAgent.Contracts.Agent.AgentClient;

namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>The agent's generated gRPC client over its Unix socket, as hactl uses it.</summary>
internal sealed class AgentApiClient : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly AgentClient _client;

    public AgentApiClient(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
        _client = new AgentClient(_channel);
    }

    public Task<LaunchReply> LaunchAsync(LaunchRequest request) => _client.LaunchAsync(request, Options()).ResponseAsync;

    public Task<StopReply> StopAsync(string group) => _client.StopAsync(new StopRequest { Group = group }, Options()).ResponseAsync;

    /// <param name="force">restore a running group (its processes are killed); refused otherwise</param>
    public Task<RestoreReply> RestoreAsync(string group, string id = "", bool force = false) =>
        _client.RestoreAsync(new RestoreRequest { Group = group, CheckpointId = id, Force = force }, Options()).ResponseAsync;

    public Task<StatusReply> StatusAsync(string group = "") => _client.StatusAsync(new StatusRequest { Group = group }, Options()).ResponseAsync;

    public Task<ListImagesReply> ListImagesAsync(string group = "") =>
        _client.ListImagesAsync(new ListImagesRequest { Group = group }, Options()).ResponseAsync;

    public Task<VerifyImageReply> VerifyImageAsync(string group, string id) =>
        _client.VerifyImageAsync(new VerifyImageRequest { Group = group, Id = id }, Options()).ResponseAsync;

    /// <summary>Every progress message of a checkpoint, the last one carrying the result.</summary>
    public async Task<IReadOnlyList<CheckpointProgress>> CheckpointAsync(string group, bool full = false)
    {
        using var call = _client.Checkpoint(new CheckpointRequest { Group = group, Full = full }, Options());
        var messages = new List<CheckpointProgress>();
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            messages.Add(message);
        }
        return messages;
    }

    public void Dispose() => _channel.Dispose();

    /// <summary>A safety net so that a broken agent fails a test instead of hanging it; no test depends on it.</summary>
    private static CallOptions Options() => new(deadline: DateTime.UtcNow.AddMinutes(2));
}
