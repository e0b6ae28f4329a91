using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Errors;
using Understudy.GuestAgent.Groups;
using Understudy.GuestAgent.Hosting;
using Understudy.GuestAgent.Members;
using Understudy.Images;

namespace Understudy.GuestAgent.Checkpointing;

/// <summary>
/// Takes a coordinated checkpoint of one group, in the phases of DESIGN.md ("How a coordinated
/// checkpoint goes"): lock, PREPARE, WRITE, COMMIT, RESUME. Any failure before the commit
/// aborts: the members resume, the staging directory is discarded, and the previous checkpoint
/// stays the newest.
/// </summary>
internal sealed class CheckpointCoordinator
{
    private readonly GroupLocator _locator;
    private readonly CheckpointStore _store;
    private readonly ManifestBuilder _manifests;
    private readonly AgentOptions _options;
    private readonly ILogger<CheckpointCoordinator> _logger;

    public CheckpointCoordinator(
        GroupLocator locator, CheckpointStore store, ManifestBuilder manifests,
        IOptions<AgentOptions> options, ILogger<CheckpointCoordinator> logger)
    {
        _locator = locator;
        _store = store;
        _manifests = manifests;
        _options = options.Value;
        _logger = logger;
    }

    /// <param name="full">accepted for the API; every checkpoint is full until incremental images exist.</param>
    public async Task<CheckpointOutcome> RunAsync(
        string groupName, bool full, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        const string kind = CheckpointManifest.FullKind;
        var group = _locator.RequireRunning(groupName);
        var duration = Stopwatch.StartNew();

        progress?.Report(new(CheckpointPhases.Lock, 0, 0));
        // Step 1: registrations in flight finish, new ones wait until RESUME.
        using var lease = await group.Gate.CloseForCheckpointAsync(_options.PrepareTimeout, cancellationToken).ConfigureAwait(false);
        var members = group.Members.Snapshot();
        if (members.Count == 0)
        {
            throw AgentException.FailedPrecondition($"group {group.Name} has no members to checkpoint");
        }

        var (id, seq, stagingDir) = _store.CreateStaging(group.Name);
        _logger.LogInformation(
            "Checkpoint {CheckpointId} of group {Group} started: {Members} members, kind {Kind} (full requested: {FullRequested})",
            id, group.Name, members.Count, kind, full);

        var frozen = new Stopwatch();
        var phase = "PREPARE";
        CheckpointInfo committed;
        try
        {
            ReplyBarrier.DiscardStaleReplies(members);

            // Step 2: every member stops its application threads.
            progress?.Report(new(CheckpointPhases.Prepare, 0, members.Count));
            frozen.Start();
            await ReplyBarrier.RunAsync<FrozenReply>(
                members, new PrepareCommand(id), _options.PrepareTimeout,
                Counter(progress, CheckpointPhases.Prepare, members.Count), sent: null, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation(
                "Checkpoint {CheckpointId} of group {Group}: all {Members} members frozen after {ElapsedMs:F1} ms",
                id, group.Name, members.Count, frozen.Elapsed.TotalMilliseconds);

            // Steps 3-4: the members drain in-flight data and write their images into staging.
            phase = "WRITE";
            progress?.Report(new(CheckpointPhases.Write, 0, members.Count));
            var written = await ReplyBarrier.RunAsync<WrittenReply>(
                members, new WriteCommand(id, stagingDir, kind), _options.WriteTimeout,
                Counter(progress, CheckpointPhases.Write, members.Count), sent: null, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation(
                "Checkpoint {CheckpointId} of group {Group}: all {Members} members written after {ElapsedMs:F1} ms",
                id, group.Name, members.Count, frozen.Elapsed.TotalMilliseconds);

            // Step 5: the checkpoint exists once its manifest is committed.
            phase = "COMMIT";
            progress?.Report(new(CheckpointPhases.Commit, members.Count, members.Count));
            var manifest = _manifests.Build(group.Name, seq, kind, stagingDir, members, written);
            committed = _store.Commit(group.Name, id, manifest);
        }
        catch (Exception e)
        {
            await AbortAsync(group, id, members, phase, e).ConfigureAwait(false);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw AgentException.Aborted(
                $"checkpoint of group {group.Name} aborted: {Cause(e, phase)}; {PreviousCheckpoint(group.Name)}", e);
        }

        // Step 6: the group runs again. The checkpoint is committed whatever happens now.
        progress?.Report(new(CheckpointPhases.Resume, 0, members.Count));
        var frozenMs = 0.0;
        try
        {
            await ReplyBarrier.RunAsync<ResumedReply>(
                members, new ResumeCommand(), _options.PrepareTimeout,
                Counter(progress, CheckpointPhases.Resume, members.Count),
                sent: () => frozenMs = frozen.Elapsed.TotalMilliseconds, CancellationToken.None).ConfigureAwait(false);
        }
        catch (MemberPhaseException e)
        {
            _logger.LogWarning(
                "Checkpoint {CheckpointId} of group {Group} is committed, but {Problem}", id, group.Name, e.Message);
        }

        var outcome = new CheckpointOutcome(
            group.Name, id, committed.Kind, committed.Bytes, members.Count, frozenMs, duration.Elapsed.TotalMilliseconds);
        _logger.LogInformation(
            "Checkpoint {CheckpointId} of group {Group} taken: kind {Kind}, {Members} members, {Bytes} bytes, frozen {FrozenMs:F1} ms, total {DurationMs:F1} ms",
            outcome.Id, outcome.Group, outcome.Kind, outcome.Members, outcome.Bytes, outcome.FrozenMs, outcome.DurationMs);
        return outcome;
    }

    /// <summary>ABORT to every member still connected, then the staging directory goes.</summary>
    private async Task AbortAsync(Group group, string id, IReadOnlyList<Member> members, string phase, Exception cause)
    {
        _logger.LogWarning(
            "Checkpoint {CheckpointId} of group {Group} failed during {Phase}: {Cause}; aborting",
            id, group.Name, phase, Cause(cause, phase));
        var connected = members.Where(m => m.Connection is { IsClosed: false }).ToList();
        try
        {
            await ReplyBarrier.RunAsync<ResumedReply>(
                connected, new AbortCommand(), _options.PrepareTimeout, answered: null, sent: null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (MemberPhaseException e)
        {
            _logger.LogWarning("Checkpoint {CheckpointId} of group {Group}: after ABORT, {Problem}", id, group.Name, e.Message);
        }
        try
        {
            _store.DiscardStaging(group.Name, id);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(
                "Checkpoint {CheckpointId} of group {Group}: could not discard its staging directory: {Error}", id, group.Name, e.Message);
        }
        _logger.LogWarning("Checkpoint {CheckpointId} of group {Group} aborted", id, group.Name);
    }

    private static string Cause(Exception e, string phase) => e switch
    {
        MemberPhaseException or CheckpointCommitException => e.Message,
        OperationCanceledException => $"the caller cancelled it during {phase}",
        IOException => $"writing the checkpoint failed during {phase}: {e.Message}",
        _ => $"{phase} failed: {e.Message}",
    };

    private string PreviousCheckpoint(string group) =>
        _store.NewestId(group) is { } previous
            ? $"the previous checkpoint {previous} is still valid"
            : "no earlier checkpoint exists";

    private static IProgress<int>? Counter(IProgress<CheckpointProgressUpdate>? progress, string phase, int total) =>
        progress is null ? null : new InlineProgress<int>(done => progress.Report(new(phase, done, total)));
}

/// <summary>
/// IProgress that reports synchronously on the caller's thread, in order (Progress&lt;T&gt; would
/// post to the thread pool and could reorder).
/// </summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
