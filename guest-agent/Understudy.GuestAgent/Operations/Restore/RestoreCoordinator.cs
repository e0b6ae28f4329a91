using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Store;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Restore;

/// <summary>A restored group, as the Restore call reports it.</summary>
internal sealed record RestoreOutcome(string Group, string Id, IReadOnlyList<Member> Members, double DurationMs);

/// <summary>
/// Brings a group back from a committed checkpoint (docs/architecture.md, "A restore"): the
/// checkpoint and the chain of checkpoints its incremental images apply to are pinned while they
/// are read and the group's background merges held, the whole chain is verified before anything
/// is touched, the running group (if any) is stopped, us-init rebuilds the process tree from the
/// chain as it is (<see cref="RestorePlan"/>: nothing is merged on the way), and once every
/// process of the checkpoint said HELLO they are resumed, in the
/// order the caller gives (all together, or for a supervised group app by app in launch order,
/// each once the one before is ready). The restored processes descend from that checkpoint: the next checkpoint may be
/// incremental on it. Only the group's lifecycle calls it, holding the group's lifecycle lock.
/// </summary>
internal sealed class RestoreCoordinator
{
    private readonly GroupRegistry _groups;
    private readonly CheckpointStore _store;
    private readonly CheckpointKeeper _keeper;
    private readonly GroupLauncher _launcher;
    private readonly InitCommandLine _commandLine;
    private readonly StatePaths _paths;
    private readonly CheckpointLineage _lineage;
    private readonly AgentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RestoreCoordinator> _logger;

    public RestoreCoordinator(
        GroupRegistry groups, CheckpointStore store, CheckpointKeeper keeper, GroupLauncher launcher, InitCommandLine commandLine,
        StatePaths paths, CheckpointLineage lineage, IOptions<AgentOptions> options, TimeProvider time, ILogger<RestoreCoordinator> logger)
    {
        _groups = groups;
        _store = store;
        _keeper = keeper;
        _launcher = launcher;
        _commandLine = commandLine;
        _paths = paths;
        _lineage = lineage;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <param name="checkpointId">the checkpoint to restore, or null/empty for the newest.</param>
    /// <param name="resume">how the restored processes are let run; its failures fail the restore as they are</param>
    public async Task<RestoreOutcome> RestoreAsync(
        string groupName, string? checkpointId, IResumeOrder resume, CancellationToken cancellationToken)
    {
        GroupNames.Require(groupName);
        var id = string.IsNullOrEmpty(checkpointId) ? _store.NewestId(groupName) : checkpointId;
        if (id is null)
        {
            throw AgentException.NotFound($"group {groupName} has no checkpoint to restore; take one with: hactl checkpoint {groupName}");
        }
        // Nothing may rewrite or delete the chain while it is verified and read by us-init, and
        // a background merge does not compete with the restore for the disk.
        using var merges = _keeper.PauseMerges(groupName);
        using var pin = Pin(groupName, id);
        // A corrupt or truncated image, in the checkpoint or below it, is refused here, before
        // the running group is touched.
        var (manifest, plan) = Verify(groupName, id);
        var restore = new InitRestore(_store.CheckpointDir(groupName, id), Path.Combine(_paths.GroupDir(groupName), PlanFileName));
        _commandLine.EnsureInstalled(restoring: true);

        var group = _groups.GetOrCreate(groupName);
        var duration = Stopwatch.StartNew();
        _logger.LogInformation(
            "Restore of group {Group} from checkpoint {CheckpointId} started: {Members} members, {Kind} (chains of up to {Images} images, not merged)",
            group.Name, id, manifest.Members.Count, manifest.Kind, plan.LongestChain);
        if (group.Init is not null || group.Members.Count > 0)
        {
            await _launcher.StopAsync(group).ConfigureAwait(false);
        }

        // A checkpoint that was running aborts now that its members are gone; then only
        // restored processes may register until the group resumes.
        using var lease = await group.Gate.HoldForRestoreAsync(cancellationToken).ConfigureAwait(false);
        IReadOnlyList<Member> members;
        InitProcess init;
        try
        {
            plan.WriteTo(restore.Plan);
            (init, members) = await RebuildAsync(group, id, manifest, restore, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(restore.Plan);
        }
        await ResumeAsync(group, id, init, members, resume, cancellationToken).ConfigureAwait(false);

        _lineage.Restored(group.Name, CheckpointId.Parse(id));
        var outcome = new RestoreOutcome(group.Name, id, members, duration.Elapsed.TotalMilliseconds);
        _logger.LogInformation(
            "Restore of group {Group} from checkpoint {CheckpointId} finished: {Members} members running after {DurationMs:F1} ms",
            group.Name, id, members.Count, outcome.DurationMs);
        return outcome;
    }

    /// <summary>The restore plan, in the group's directory, which only the agent writes; removed once us-init read it.</summary>
    private const string PlanFileName = "restore.plan";

    private CheckpointPin Pin(string group, string id)
    {
        try
        {
            return _keeper.Pin(group, id);
        }
        catch (ImageFormatException e)
        {
            throw AgentException.FailedPrecondition($"restore of group {group} refused: {e.Message}", e);
        }
    }

    /// <summary>The checkpoint and its whole chain, verified, and the images each process is restored from.</summary>
    private (CheckpointManifest Manifest, RestorePlan Plan) Verify(string group, string id)
    {
        try
        {
            // A migration target verified the chain it made ready (CheckpointKeeper.MergeForRestoreAsync)
            // while the group still ran on the source; what has not changed since is not read again.
            var manifest = _store.VerifyForRestore(group, id, reusePageChecks: true);
            return (manifest, RestorePlan.For(_store, group, id, manifest));
        }
        catch (ImageFormatException e)
        {
            throw AgentException.FailedPrecondition($"restore of group {group} refused: {e.Message}", e);
        }
    }

    /// <summary>us-init rebuilds the checkpoint's process tree; returns once every process of it said HELLO (frozen).</summary>
    private async Task<(InitProcess Init, IReadOnlyList<Member> Members)> RebuildAsync(
        Group group, string id, CheckpointManifest manifest, InitRestore restore, CancellationToken cancellationToken)
    {
        var expected = manifest.Members.Select(m => m.Vpid).ToHashSet();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RestoreTimeout);
        var step = "starting us-init";
        InitProcess? init = null;
        try
        {
            init = await _launcher.StartInitAsync(group, restore, deadline.Token).ConfigureAwait(false);

            step = "waiting for RESTORED";
            var restored = await UnlessInitExits(init, init.WaitRestoredAsync(deadline.Token)).ConfigureAwait(false);
            if (restored != expected.Count)
            {
                _logger.LogWarning(
                    "Restore of group {Group}: us-init restored {Restored} processes, the checkpoint has {Expected}",
                    group.Name, restored, expected.Count);
            }

            step = "waiting for the restored processes to register";
            await UnlessInitExits(init, UnlessOneExits(init, expected, group.Members.WaitUntilAsync(
                table => expected.All(table.ContainsKey), deadline.Token))).ConfigureAwait(false);
            var members = expected.Order().Select(vpid => group.Members.Find(vpid)).OfType<Member>().ToList();
            return (init, members);
        }
        catch (Exception e) when (e is not AgentException || init is not null)
        {
            var cause = e is OperationCanceledException
                ? $"{step} took longer than {Durations.Describe(_options.RestoreTimeout)}{Missing(group, expected)}"
                : $"{step}: {e.Message}";
            if (init is not null)
            {
                // Whatever was rebuilt is incomplete: kill it rather than leave a half group.
                init.Kill();
                await _launcher.StopAsync(group).ConfigureAwait(false);
            }
            cancellationToken.ThrowIfCancellationRequested();
            _logger.LogError("Restore of group {Group} from checkpoint {CheckpointId} failed: {Cause}", group.Name, id, cause);
            throw AgentException.Unavailable(
                $"restore of group {group.Name} from checkpoint {id} failed: {cause}; see {_paths.NativeLog(group.Name)}", e);
        }
    }

    /// <summary>
    /// Every process of the checkpoint is back: they are let run in the caller's order. A resumed
    /// process may fork or exec from now on; checkpoints wait until the restore is over. On a
    /// failure the group, partly resumed, is killed rather than left half there.
    /// </summary>
    private async Task ResumeAsync(
        Group group, string id, InitProcess init, IReadOnlyList<Member> members, IResumeOrder resume, CancellationToken cancellationToken)
    {
        group.Gate.BeginResuming();
        try
        {
            await resume.ResumeAsync(members, new MemberResumer(group, _options.PrepareTimeout, _time), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            init.Kill();
            await _launcher.StopAsync(group).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            _logger.LogError("Restore of group {Group} from checkpoint {CheckpointId} failed while resuming: {Cause}", group.Name, id, e.Message);
            if (e is ResumeFailedException)
            {
                throw AgentException.Unavailable(
                    $"restore of group {group.Name} from checkpoint {id} failed: {e.Message}; see {_paths.NativeLog(group.Name)}", e);
            }
            throw;
        }
    }

    /// <summary>Waits for <paramref name="work"/>, failing at once if us-init dies meanwhile.</summary>
    private static async Task<T> UnlessInitExits<T>(InitProcess init, Task<T> work)
    {
        if (await Task.WhenAny(work, init.Exited).ConfigureAwait(false) == work)
        {
            return await work.ConfigureAwait(false);
        }
        throw new InitProcessException(init.DescribeExit());
    }

    private static async Task UnlessInitExits(InitProcess init, Task work)
    {
        if (await Task.WhenAny(work, init.Exited).ConfigureAwait(false) == work)
        {
            await work.ConfigureAwait(false);
            return;
        }
        throw new InitProcessException(init.DescribeExit());
    }

    /// <summary>Waits for <paramref name="work"/>, failing at once, with how it ended, if a restored process dies first.</summary>
    private static async Task UnlessOneExits(InitProcess init, IReadOnlySet<int> vpids, Task work)
    {
        var exits = vpids.Select(init.Reaped.WhenReaped).ToList();
        var first = await Task.WhenAny([work, .. exits]).ConfigureAwait(false);
        if (first == work)
        {
            await work.ConfigureAwait(false);
            return;
        }
        var exit = await ((Task<InitExited>)first).ConfigureAwait(false);
        throw new InitProcessException($"restored process {exit.Vpid} {exit.How} before it registered");
    }

    private static string Missing(Group group, IReadOnlySet<int> expected)
    {
        var missing = expected.Where(vpid => group.Members.Find(vpid) is null).Order().ToList();
        return missing.Count == 0 ? "" : $" (vpids {string.Join(", ", missing)} never said HELLO)";
    }
}
