using Grpc.Core;
using Understudy.GuestAgent.Contracts;
using Understudy.GuestAgent.Operations.Migration;

namespace Understudy.GuestAgent.Api;

/// <summary>
/// The migration API (agent_services.proto, service Migrations): moves a live group to another node
/// (<see cref="GroupMigrator"/>), streaming its progress. Errors are mapped by <see cref="ErrorMappingInterceptor"/>.
/// </summary>
internal sealed class MigrationService(GroupMigrator migrator) : Migrations.MigrationsBase
{
    private const string Done = "done";

    public override async Task Migrate(MigrateRequest request, IServerStreamWriter<MigrateProgress> responseStream, ServerCallContext context)
    {
        var outcome = await ProgressStream.RunAsync(
            progress => migrator.MigrateAsync(request.Group, request.To, progress, context.CancellationToken),
            (MigrationProgress update) => ToProto(update), responseStream).ConfigureAwait(false);
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
