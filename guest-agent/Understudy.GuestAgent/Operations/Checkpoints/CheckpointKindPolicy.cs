using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>
/// Decides whether a checkpoint asks for incremental images: only when the group's processes
/// descend from a committed checkpoint (<see cref="CheckpointLineage"/>), and the chain since the
/// last full checkpoint is still short: fewer than <see cref="AgentOptions.FullEvery"/>
/// incremental checkpoints, holding less than <see cref="AgentOptions.ChainLimitPercent"/> of the
/// full one's bytes. A group whose policy sets its cadence of full checkpoints (fullEvery N above 1:
/// <see cref="IChainLengthPolicy"/>) gets it: up to N - 1 (at least --full-every) incremental ones,
/// whatever their bytes. A merged checkpoint counts as the incremental one it was taken as: merging
/// keeps restores short, the periodic full checkpoint keeps the images independent of old data.
/// Retention may have deleted the full checkpoint and the oldest merged ones once merges made them
/// unneeded: the chain is then counted from the oldest merged checkpoint left, whose images are
/// full now (otherwise every checkpoint after such a deletion would be full).
/// </summary>
internal sealed class CheckpointKindPolicy
{
    /// <summary>
    /// Incremental checkpoints in a row that no merge has reached yet, at most: past it the next one
    /// is full. Frequent checkpoints (ten a second under an HA policy) can outrun the background
    /// merges, which run at low priority, and a restore refuses a chain of more than
    /// <see cref="Restore.RestorePlan.MaxChainLength"/> images; this stays well under it.
    /// </summary>
    public const int MaxUnmerged = Restore.RestorePlan.MaxChainLength / 2;

    private readonly CheckpointLineage _lineage;
    private readonly CheckpointStore _store;
    private readonly IChainLengthPolicy _chainLength;
    private readonly AgentOptions _options;

    public CheckpointKindPolicy(CheckpointLineage lineage, CheckpointStore store, IChainLengthPolicy chainLength, IOptions<AgentOptions> options)
    {
        _lineage = lineage;
        _store = store;
        _chainLength = chainLength;
        _options = options.Value;
    }

    /// <param name="incrementalWherePossible">
    /// the periodic full checkpoint waits: a migration's rounds, which another node receives and
    /// whose last one the group waits for frozen, should carry only what changed
    /// </param>
    public CheckpointPlan Decide(string group, bool fullRequested, bool incrementalWherePossible = false)
    {
        if (fullRequested)
        {
            return CheckpointPlan.Full("a full checkpoint was asked for");
        }
        if (_options.FullEvery <= 0)
        {
            return CheckpointPlan.Full("incremental checkpoints are off (full every 0)");
        }
        var byPolicy = _chainLength.IncrementalsAllowed(group);
        var fullEvery = Math.Max(_options.FullEvery, byPolicy ?? 0);
        if (_lineage.BaseOf(group) is not { } baseSeq)
        {
            return CheckpointPlan.Full("the group's processes descend from no checkpoint this agent committed or restored");
        }

        var baseId = CheckpointId.Format(baseSeq);
        var chain = ChainSinceFull(group, baseSeq, fullEvery);
        if (chain is null)
        {
            return CheckpointPlan.Full($"the chain of checkpoint {baseId} cannot be followed back to a full checkpoint");
        }
        var (incrementals, chainBytes, full, unmerged) = chain.Value;
        if (incrementalWherePossible)
        {
            return CheckpointPlan.Incremental(baseSeq, $"on checkpoint {baseId}: only what changed, for a migration");
        }
        if (unmerged >= MaxUnmerged)
        {
            return CheckpointPlan.Full(
                $"the {unmerged} incremental checkpoints up to {baseId} are not merged yet (the background merges are behind), and a restore reads each of them");
        }
        if (incrementals >= fullEvery)
        {
            return CheckpointPlan.Full($"{incrementals} incremental checkpoints since the last full one (full every {fullEvery})");
        }
        // A policy that sets its own cadence of full checkpoints gets it: the others are incremental.
        if (byPolicy is null && chainBytes * 100 >= full.Bytes * (long)_options.ChainLimitPercent)
        {
            return CheckpointPlan.Full(
                $"the {incrementals} incremental checkpoints since full checkpoint {full.Id} hold {chainBytes} bytes, {_options.ChainLimitPercent}% of its {full.Bytes} or more");
        }
        return CheckpointPlan.Incremental(baseSeq,
            $"on checkpoint {baseId}, {incrementals} incremental checkpoints ({chainBytes} bytes) since full checkpoint {full.Id} ({full.Bytes} bytes)");
    }

    /// <summary>
    /// Walks from <paramref name="baseSeq"/> back to the last checkpoint taken full: how many
    /// checkpoints taken incremental lie on the way (the base included), the bytes they wrote, and
    /// how many of them, from the base back, are not merged yet. Null when the chain is broken (a
    /// manifest is missing or unreadable).
    /// </summary>
    private (int Incrementals, long Bytes, CheckpointManifest Full, int Unmerged)? ChainSinceFull(string group, long baseSeq, int fullEvery)
    {
        var incrementals = 0;
        var unmerged = 0;
        long bytes = 0;
        var seq = baseSeq;
        CheckpointManifest? oldestMerged = null;
        while (true)
        {
            CheckpointManifest manifest;
            try
            {
                manifest = _store.LoadManifest(group, CheckpointId.Format(seq));
            }
            catch (CheckpointNotFoundException) when (oldestMerged?.Merged is { } behind)
            {
                // Deleted by retention behind a merged checkpoint: that one is the full image now.
                return (incrementals - 1, bytes - behind.Bytes, oldestMerged, unmerged);
            }
            catch (Exception e) when (e is CheckpointNotFoundException or ImageFormatException)
            {
                return null;
            }
            long previous;
            if (manifest.Merged is { } merged)
            {
                bytes += merged.Bytes;
                previous = merged.BaseSeq;
                oldestMerged = manifest;
            }
            else if (manifest.Kind == CheckpointManifest.IncrementalKind)
            {
                bytes += manifest.Bytes;
                previous = manifest.BaseSeq;
                if (oldestMerged is null)
                {
                    unmerged++;
                }
            }
            else
            {
                return (incrementals, bytes, manifest, unmerged);
            }
            incrementals++;
            // Bases always lie further back, so the walk ends; past FullEvery the answer is known.
            if (incrementals >= fullEvery || previous <= 0 || previous >= seq)
            {
                return incrementals >= fullEvery ? (incrementals, bytes, manifest, unmerged) : null;
            }
            seq = previous;
        }
    }
}
