using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// While it lasts, every checkpoint of one group taken here goes to one node as its images are
/// written (<see cref="CheckpointSender.SendWhileWrittenAsync"/>): a migration's rounds, whose
/// target need not be the group's standby. What fails here goes by the caller's own send once the
/// checkpoint is committed, which waits for this one and goes on from what arrived.
/// </summary>
internal sealed class SendsWhileWritten : IAsyncDisposable
{
    private readonly CheckpointKeeper _keeper;
    private readonly CheckpointSender _sender;
    private readonly string _node;
    private readonly string _group;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _sends = [];

    public SendsWhileWritten(CheckpointKeeper keeper, CheckpointSender sender, string node, string group, ILogger logger)
    {
        _keeper = keeper;
        _sender = sender;
        _node = node;
        _group = group;
        _logger = logger;
        _keeper.Writing += OnWriting;
    }

    // Inside the checkpoint, while its files are still in the staging directory: opened now.
    private void OnWriting(WritingCheckpoint writing)
    {
        if (writing.Group != _group)
        {
            return;
        }
        GrowingImageFiles files;
        try
        {
            files = new GrowingImageFiles(writing);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogInformation("Checkpoint {CheckpointId} of group {Group} could not be opened to go to node {Node} while written: {Error}", writing.Id, _group, _node, e.Message);
            return;
        }
        lock (_sends)
        {
            _sends.RemoveAll(s => s.IsCompleted);
            _sends.Add(Task.Run(() => SendAsync(files)));
        }
    }

    private async Task SendAsync(GrowingImageFiles files)
    {
        using (files)
        {
            try
            {
                await _sender.SendWhileWrittenAsync(_node, files, _ => { }, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Best effort, never the migration's failure: what did not go goes by its own send.
                if (e is not OperationCanceledException && !_stop.IsCancellationRequested)
                {
                    _logger.LogInformation(
                        "Checkpoint {CheckpointId} of group {Group} could not go to node {Node} while it was written: {Error}; it goes once committed",
                        files.Id, _group, _node, e.Message);
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _keeper.Writing -= OnWriting;
        await _stop.CancelAsync().ConfigureAwait(false);
        Task[] sends;
        lock (_sends)
        {
            sends = [.. _sends];
        }
        await Task.WhenAll(sends).ConfigureAwait(false);
        _stop.Dispose();
    }
}
