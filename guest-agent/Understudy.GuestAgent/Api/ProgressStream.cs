using System.Threading.Channels;
using Grpc.Core;
using Understudy.GuestAgent.Operations.Checkpoints;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// A server-streaming call whose operation reports progress from its own flow (a checkpoint, a
/// migration): one pump writes the updates to the stream, since gRPC allows only one write at a time.
/// </summary>
internal static class ProgressStream
{
    /// <summary>Runs <paramref name="operation"/>, writing each update it reports; returns its outcome once all were written.</summary>
    public static async Task<TOutcome> RunAsync<TUpdate, TOutcome, TMessage>(
        Func<IProgress<TUpdate>, Task<TOutcome>> operation, Func<TUpdate, TMessage> toMessage, IServerStreamWriter<TMessage> stream)
    {
        var updates = Channel.CreateUnbounded<TUpdate>(new UnboundedChannelOptions { SingleReader = true });
        var run = RunAsync(operation, updates.Writer);
        try
        {
            // Ends when the operation finished: it completes the channel either way.
            await foreach (var update in updates.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                await stream.WriteAsync(toMessage(update)).ConfigureAwait(false);
            }
        }
        catch when (!run.IsCompleted)
        {
            // The client went away; the operation sees the cancelled call and gives up. Let it
            // finish before the call ends.
            await run.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }
        return await run.ConfigureAwait(false);
    }

    private static async Task<TOutcome> RunAsync<TUpdate, TOutcome>(Func<IProgress<TUpdate>, Task<TOutcome>> operation, ChannelWriter<TUpdate> updates)
    {
        try
        {
            await Task.Yield();
            return await operation(new InlineProgress<TUpdate>(update => updates.TryWrite(update))).ConfigureAwait(false);
        }
        finally
        {
            updates.TryComplete();
        }
    }
}
