using System.Threading.Channels;
using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Migration;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// The migration API (agent_services.proto, service Migrations): moves a live group to another node
/// (<see cref="GroupMigrator"/>), streaming its progress. Errors are mapped by <see cref="ErrorMappingInterceptor"/>.
/// </summary>
internal sealed class MigrationService(GroupMigrator migrator) : Migrations.MigrationsBase
{
    public const string Done = "done";

    public override async Task Migrate(MigrateRequest request, IServerStreamWriter<MigrateProgress> responseStream, ServerCallContext context)
    {
        // Progress comes from the migration's own flow (and its sender); one pump writes the stream.
        var updates = Channel.CreateUnbounded<MigrationProgress>(new UnboundedChannelOptions { SingleReader = true });
        var run = RunAsync(request, updates.Writer, context.CancellationToken);
        try
        {
            await foreach (var update in updates.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                await responseStream.WriteAsync(ToProto(update)).ConfigureAwait(false);
            }
        }
        catch when (!run.IsCompleted)
        {
            // The client went away: the migration sees the cancelled call and gives up (the group
            // runs on here). Let it finish before the call ends.
            await run.ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }
        var outcome = await run.ConfigureAwait(false);
        await responseStream.WriteAsync(new MigrateProgress
        {
            Phase = Done,
            Round = outcome.Rounds,
            CheckpointId = outcome.CheckpointId,
            BytesSent = outcome.BytesSent,
            Result = new MigrateResult
            {
                Group = outcome.Group,
                To = outcome.Target,
                CheckpointId = outcome.CheckpointId,
                Rounds = outcome.Rounds,
                Members = outcome.Members,
                Bytes = outcome.BytesSent,
                FrozenMs = outcome.FrozenMs,
                DurationMs = outcome.DurationMs,
            },
        }).ConfigureAwait(false);
    }

    private async Task<MigrationOutcome> RunAsync(MigrateRequest request, ChannelWriter<MigrationProgress> updates, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Yield();
            var progress = new InlineProgress<MigrationProgress>(update => updates.TryWrite(update));
            return await migrator.MigrateAsync(request.Group, request.To, progress, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            updates.TryComplete();
        }
    }

    private static MigrateProgress ToProto(MigrationProgress update) => new()
    {
        Phase = update.Phase,
        Round = update.Round,
        CheckpointId = update.CheckpointId,
        RoundBytes = update.RoundBytes,
        BytesSent = update.BytesSent,
        BytesPerSecond = update.BytesPerSecond,
    };
}
