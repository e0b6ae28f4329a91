using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// Every call's failure leaves as an RpcException with a status code and a one-line detail, so
/// that the service methods can simply throw the domain's exceptions.
/// </summary>
internal sealed class ErrorMappingInterceptor : Interceptor
{
    private readonly ILogger<ErrorMappingInterceptor> _logger;

    public ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger)
    {
        _logger = logger;
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, context);
        }
    }

    // The peer service's push streams its requests.
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, context);
        }
    }

    private RpcException Map(Exception exception, ServerCallContext context)
    {
        var rpc = ErrorMapping.ToRpcException(exception);
        if (ErrorMapping.IsUnexpected(exception))
        {
            _logger.LogError(exception, "{Method} failed unexpectedly", context.Method);
        }
        else
        {
            _logger.LogWarning("{Method} failed: {Status}: {Detail}", context.Method, rpc.StatusCode, rpc.Status.Detail);
        }
        return rpc;
    }
}
