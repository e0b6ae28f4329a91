using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Takes a coordinated checkpoint of one group, in the phases of docs/architecture.md ("A
/// coordinated checkpoint"): lock, PREPARE, WRITE, COMMIT, RESUME. Any failure before the commit
/// aborts: the members resume, the staging directory is discarded, and the previous checkpoint
/// stays the newest. <see cref="CheckpointKindPolicy"/> decides whether WRITE asks for
/// incremental images; the store owner (<see cref="CheckpointKeeper"/>) stages and commits the
/// checkpoint, holds the group's merges meanwhile, and has a committed incremental one merged in
/// the background.
/// </summary>
internal sealed class CheckpointCoordinator
{
    private readonly GroupLocator _locator;
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly ManifestBuilder _manifests;
    private readonly CheckpointKindPolicy _policy;
    private readonly CheckpointLineage _lineage;
    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<CheckpointCoordinator> _logger;

    public CheckpointCoordinator(
        GroupLocator locator, CheckpointStore store, CheckpointKeeper keeper, ManifestBuilder manifests, CheckpointKindPolicy policy,
        CheckpointLineage lineage, IOptions<AgentOptions> options, TimeProvider time, ILogger<CheckpointCoordinator> logger)
    {
        _locator = locator;
        _store = store;
        _keeper = keeper;
        _manifests = manifests;
        _policy = policy;
        _lineage = lineage;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <param name="full">write full images even when incremental ones are possible.</param>
    /// <param name="freeze">measures how long the group is frozen, also when the checkpoint fails</param>
    /// <param name="incrementalWherePossible">the periodic full checkpoint waits (<see cref="CheckpointKindPolicy.Decide"/>)</param>
    public async Task<CheckpointOutcome> RunAsync(
        string groupName, bool full, FreezeMeter freeze, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken,
        bool incrementalWherePossible = false)
    {
        var (outcome, _) = await RunCoreAsync(groupName, full, holdFrozen: false, freeze, progress, cancellationToken, incrementalWherePossible)
            .ConfigureAwait(false);
        return outcome;
    }

    /// <summary>
    /// A checkpoint after which the group stays frozen: the last round of a migration, whose
    /// processes must not run on until the target runs them or the migration gave up. The members
    /// write their images while frozen (no copy-on-write writer), and the committed checkpoint is
    /// exactly the group's state. The caller resumes the group or stops it.
    /// </summary>
    public async Task<FrozenGroup> RunAndHoldAsync(
        string groupName, FreezeMeter freeze, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        var (_, held) = await RunCoreAsync(groupName, full: false, holdFrozen: true, freeze, progress, cancellationToken).ConfigureAwait(false);
        return held!;
    }

    private async Task<(CheckpointOutcome Outcome, FrozenGroup? Held)> RunCoreAsync(
        string groupName, bool full, bool holdFrozen, FreezeMeter freeze, IProgress<CheckpointProgressUpdate>? progress,
        CancellationToken cancellationToken, bool incrementalWherePossible = false)
    {
        var group = _locator.RequireRunning(groupName);
        var duration = Stopwatch.StartNew();

        progress?.Report(new(CheckpointPhases.Lock, 0, 0));
        // Step 1: registrations in flight finish, new ones wait until RESUME.
        var lease = await group.Gate.CloseForCheckpointAsync(_options.PrepareTimeout, cancellationToken).ConfigureAwait(false);
        var holding = false;
        try
        {
            var result = await RunLockedAsync(
                group, lease, full, holdFrozen, incrementalWherePossible || holdFrozen, freeze, duration, progress, cancellationToken).ConfigureAwait(false);
            holding = result.Held is not null;
            return result;
        }
        finally
        {
            // A group held frozen keeps the registration lock until it is resumed or stopped.
            if (!holding)
            {
                lease.Dispose();
            }
        }
    }

    private async Task<(CheckpointOutcome Outcome, FrozenGroup? Held)> RunLockedAsync(
        Group group, GateLease lease, bool full, bool holdFrozen, bool incrementalWherePossible, FreezeMeter freeze, Stopwatch duration,
        IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken)
    {
        IReadOnlyList<Member> members = group.Members.Snapshot();
        if (members.Count == 0)
        {
            throw AgentException.FailedPrecondition($"group {group.Name} has no members to checkpoint");
        }
        // A member that cannot answer would hold the others frozen: refused before anyone is.
        if (await MemberLiveness.FindStuckAsync(members, _time, cancellationToken).ConfigureAwait(false) is var (stuck, condition))
        {
            throw AgentException.FailedPrecondition(
                $"checkpoint of group {group.Name} refused: {MemberLiveness.Describe(stuck, condition)}; nothing was frozen, {PreviousCheckpoint(group.Name)}");
        }
        // The group's background merges wait until the checkpoint is over, except while its writers write.
        using var staged = _keeper.BeginCheckpoint(group.Name);
        var (id, seq, stagingDir) = (staged.Id, staged.Seq, staged.Directory);
        var plan = _policy.Decide(group.Name, full, incrementalWherePossible);
        _logger.LogInformation(
            "Checkpoint {CheckpointId} of group {Group} started: {Members} members, asking for {Kind} images ({Reason})",
            id, group.Name, members.Count, plan.Kind, plan.Reason);

        var phase = "PREPARE";
        CheckpointInfo committed;
        try
        {
            ReplyBarrier.DiscardStaleReplies(members);
            // Made before the freeze, which need not wait for them: the image files, and which member
            // captures the IPC objects, the lowest vpid of those that run as root (one that dropped
            // its privileges may not read them), else the lowest.
            using var images = new MemberImageFiles(stagingDir, members);
            var ipcCapturer = members.OrderBy(m => ProcFs.EffectiveUid(m.HostPid) == 0 ? 0 : 1).ThenBy(m => m.Vpid).First();

            // Step 2: every member stops its application threads. One that exits meanwhile (a
            // pipeline's short-lived command) ended before the cut: the checkpoint goes on
            // without it, unless it was to capture the IPC objects for all.
            progress?.Report(new(CheckpointPhases.Prepare, 0, members.Count));
            freeze.Freeze();
            var frozen = await ReplyBarrier.RunAsync<FrozenReply>(
                members, new PrepareCommand(id), _options.PrepareTimeout,
                Counter(progress, CheckpointPhases.Prepare, members.Count), sent: null, cancellationToken,
                mayLeave: m => m != ipcCapturer && !ProcFs.IsRunning(m.HostPid)).ConfigureAwait(false);
            if (frozen.Count < members.Count)
            {
                var left = members.Where(m => !frozen.ContainsKey(m)).ToList();
                foreach (var member in left)
                {
                    images.Drop(member);
                }
                members = members.Where(frozen.ContainsKey).ToList();
                _logger.LogInformation(
                    "Checkpoint {CheckpointId} of group {Group}: {Left} exited before freezing; the checkpoint holds the other {Members} members",
                    id, group.Name, string.Join(", ", left.Select(m => m.Describe())), members.Count);
            }
            // Each member looked at its memory map before it froze: none was frozen before the quickest was done.
            freeze.NotFrozenFor(TimeSpan.FromMicroseconds(frozen.Values.Min(r => r.SurveyMicros)));
            _logger.LogInformation(
                "Checkpoint {CheckpointId} of group {Group}: all {Members} members frozen after {ElapsedMs:F1} ms",
                id, group.Name, members.Count, freeze.Elapsed.TotalMilliseconds);

            // Steps 3-4: with the whole group frozen, every member drains in-flight data and
            // captures its state; a forked writer per member then writes the image from a
            // copy-on-write snapshot, so the group is frozen for the capture only. The group's
            // IPC objects belong to its namespace, not to a process: one member captures them for
            // all (ipcCapturer).
            phase = "WRITE";
            progress?.Report(new(CheckpointPhases.Write, 0, members.Count));
            var write = new WriteCommand(id, stagingDir, plan.Kind, plan.BaseSeq, CopyOnWrite: !holdFrozen);
            MemberCommand WriteFor(Member m) => write with { CapturesIpc = m == ipcCapturer, Images = images.For(m) };
            // Once WRITE is out, the images grow: a standby may receive them as they are written.
            void WriteSent()
            {
                var names = images.Names.ToList();
                images.Dispose();
                staged.Writing(plan.IsIncremental ? plan.BaseSeq : 0, names);
            }
            IReadOnlyDictionary<Member, WrittenReply> written;
            if (holdFrozen)
            {
                written = await ReplyBarrier.RunAsync<WrittenReply>(
                    members, WriteFor, _options.CaptureTimeout + _options.WriteTimeout,
                    Counter(progress, CheckpointPhases.Write, members.Count), sent: WriteSent, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ReplyBarrier.RunAsync<CapturedReply>(
                    members, WriteFor, _options.CaptureTimeout, answered: null, sent: WriteSent, cancellationToken).ConfigureAwait(false);
                phase = "RESUME";
                progress?.Report(new(CheckpointPhases.Resume, 0, members.Count));
                await ResumeAsync(members, freeze, progress, cancellationToken).ConfigureAwait(false);
                staged.WhileWritten();
                _logger.LogInformation(
                    "Checkpoint {CheckpointId} of group {Group}: captured and running again after {FrozenMs:F1} ms frozen",
                    id, group.Name, freeze.FrozenMs);
                phase = "WRITE";
                written = await ReplyBarrier.AwaitAllAsync<WrittenReply>(
                    members, "WRITE", _options.WriteTimeout,
                    Counter(progress, CheckpointPhases.Write, members.Count), cancellationToken).ConfigureAwait(false);
            }
            _logger.LogInformation(
                "Checkpoint {CheckpointId} of group {Group}: all {Members} members written after {ElapsedMs:F1} ms",
                id, group.Name, members.Count, duration.Elapsed.TotalMilliseconds);

            // Step 5: the checkpoint exists once its manifest is committed.
            phase = "COMMIT";
            progress?.Report(new(CheckpointPhases.Commit, members.Count, members.Count));
            var manifest = _manifests.Build(group.Name, seq, plan, stagingDir, members, written);
            committed = staged.Commit(manifest);
            // Its writers checksummed every page they wrote: a restore need not read them all again first.
            _store.TrustWrittenPages(manifest);
            _lineage.Committed(group.Name, seq);
        }
        catch (Exception e)
        {
            await AbortAsync(group, staged, members, phase, e, freeze).ConfigureAwait(false);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw AgentException.Aborted(
                $"checkpoint of group {group.Name} aborted: {Cause(e, phase)}; {PreviousCheckpoint(group.Name)}", e);
        }

        var outcome = new CheckpointOutcome(
            group.Name, id, committed.Kind, committed.Bytes, members.Count, freeze.FrozenMs, duration.Elapsed.TotalMilliseconds, committed.BaseSeq);
        _logger.LogInformation(
            "Checkpoint {CheckpointId} of group {Group} taken: kind {Kind} (base {BaseSeq}), {Members} members, {Bytes} bytes, {Frozen}, total {DurationMs:F1} ms",
            outcome.Id, outcome.Group, outcome.Kind, outcome.BaseSeq, outcome.Members, outcome.Bytes,
            holdFrozen ? "held frozen" : $"frozen {outcome.FrozenMs:F1} ms", outcome.DurationMs);
        return (outcome, holdFrozen ? new FrozenGroup(outcome, lease, members, freeze, this) : null);
    }

    /// <summary>RESUME to every member: the group runs again; one that exits as soon as it runs is no failure.</summary>
    internal Task ResumeAsync(
        IReadOnlyList<Member> members, FreezeMeter freeze, IProgress<CheckpointProgressUpdate>? progress, CancellationToken cancellationToken) =>
        ReplyBarrier.RunAsync<ResumedReply>(
            members, new ResumeCommand(), _options.PrepareTimeout,
            Counter(progress, CheckpointPhases.Resume, members.Count),
            sent: freeze.Thaw, cancellationToken, mayLeave: m => !ProcFs.IsRunning(m.HostPid));

    /// <summary>HOLD to every member of a group held frozen: a lost link no longer thaws them (docs/protocol.md).</summary>
    internal Task HoldAsync(IReadOnlyList<Member> members, CancellationToken cancellationToken) =>
        ReplyBarrier.RunAsync<HeldReply>(members, new HoldCommand(), _options.PrepareTimeout, answered: null, sent: null, cancellationToken);

    /// <summary>
    /// RESUME to members that registered held frozen (they relinked after the agent that froze them
    /// went): no checkpoint holds them, so no registration lock or freeze meter is involved.
    /// </summary>
    public Task ResumeHeldAsync(IReadOnlyList<Member> members, CancellationToken cancellationToken) =>
        ReplyBarrier.RunAsync<ResumedReply>(members, new ResumeCommand(), _options.PrepareTimeout, answered: null, sent: null, cancellationToken);

    /// <summary>
    /// ABORT to every member still connected, then the staging directory goes. The group runs
    /// again as soon as ABORT is sent; the answers are awaited only from the members that can
    /// give one (not the one that could not answer, nor any that is stopped), for at most
    /// <see cref="AgentOptions.PrepareTimeout"/>. A stopped member reads its ABORT when it runs
    /// again, and resumes; what it answers before that ABORT's RESUMED is ignored.
    /// </summary>
    private async Task AbortAsync(
        Group group, StagedCheckpoint staged, IReadOnlyList<Member> members, string phase, Exception cause, FreezeMeter freeze)
    {
        var id = staged.Id;
        _logger.LogWarning(
            "Checkpoint {CheckpointId} of group {Group} failed during {Phase}: {Cause}; aborting",
            id, group.Name, phase, Cause(cause, phase));
        var connected = members.Where(m => m.Connection is { IsClosed: false }).ToList();
        var silent = cause is MemberPhaseException { Failure: PhaseFailure.Stuck or PhaseFailure.TimedOut } unanswered
            ? unanswered.Members.ToHashSet()
            : [];
        foreach (var member in connected)
        {
            try
            {
                await ReplyBarrier.SendAllAsync([member], new AbortCommand(), CancellationToken.None).ConfigureAwait(false);
            }
            catch (MemberPhaseException e)
            {
                _logger.LogWarning("Checkpoint {CheckpointId} of group {Group}: {Problem}", id, group.Name, e.Message);
            }
        }
        freeze.Thaw();
        var answering = connected
            .Where(m => !silent.Contains(m) && m.Connection is { IsClosed: false } && MemberLiveness.Check(m, _time) == MemberCondition.Able)
            .ToList();
        try
        {
            await ReplyBarrier.AwaitAllAsync<ResumedReply>(
                answering, "ABORT", _options.PrepareTimeout, answered: null, CancellationToken.None).ConfigureAwait(false);
        }
        catch (MemberPhaseException e)
        {
            _logger.LogWarning("Checkpoint {CheckpointId} of group {Group}: after ABORT, {Problem}", id, group.Name, e.Message);
        }
        // A member that has not answered ABORT yet still owes this round's answers: the next round
        // must not take its late FROZEN for its own and send WRITE to a member that runs.
        foreach (var member in connected)
        {
            member.Connection?.IgnoreLateReplies();
        }
        try
        {
            staged.Discard();
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
