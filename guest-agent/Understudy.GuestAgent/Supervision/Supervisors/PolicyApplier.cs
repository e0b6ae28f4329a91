using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Operations.Replication;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>What applying a policy did.</summary>
internal sealed record ApplyOutcome(string Group, bool Created, IReadOnlyList<PolicyChange> Changes, SupervisionState State);

/// <summary>
/// hactl group apply: the policy is parsed, checked against this node, stored and put in force,
/// in that order, so that a policy with any error changes nothing at all. A change is recorded
/// as an event (policy.applied or policy.changed). hactl group delete takes a stopped group's
/// policy away again (policy.deleted). One at a time.
/// </summary>
internal sealed class PolicyApplier
{
    private readonly PolicyEnvironment _environment;
    private readonly PolicyStore _store;
    private readonly PolicyCatalog _catalog;
    private readonly SupervisorRegistry _registry;
    private readonly StatePaths _paths;
    private readonly IEventPublisher _events;
    private readonly TimeProvider _time;
    private readonly StandbyAssignments _standbys;
    private readonly SemaphoreSlim _serial = new(1, 1);

    public PolicyApplier(
        PolicyEnvironment environment, PolicyStore store, PolicyCatalog catalog, SupervisorRegistry registry,
        StatePaths paths, IEventPublisher events, TimeProvider time, StandbyAssignments standbys)
    {
        _standbys = standbys;
        _environment = environment;
        _store = store;
        _catalog = catalog;
        _registry = registry;
        _paths = paths;
        _events = events;
        _time = time;
    }

    /// <param name="source">the file's name, for errors and events</param>
    /// <exception cref="AgentException">InvalidArgument: the policy is invalid; nothing was changed.</exception>
    public async Task<ApplyOutcome> ApplyAsync(string text, string source, CancellationToken cancellationToken)
    {
        var name = string.IsNullOrWhiteSpace(source) ? "policy" : source;
        ParsedPolicy parsed;
        try
        {
            parsed = PolicyParser.Parse(text, name);
            _environment.Check(parsed);
        }
        catch (PolicyException e)
        {
            throw AgentException.InvalidArgument($"{e.Message}; fix the file and apply it again (nothing was changed)");
        }
        if (parsed.Policy.Standby is { } standby)
        {
            _standbys.Require(standby);
        }

        await _serial.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var group = parsed.Policy.Group;
            if (_registry.Find(group) is { IsStandbyCopy: true } copy)
            {
                var where = copy.RunsOn is { Length: > 0 } node ? $"node {node}" : "another node";
                throw AgentException.FailedPrecondition(
                    $"group {group} runs on {where}, which supervises it: this node holds its policy as the standby's copy; " +
                    $"apply the policy on {where} (nothing was changed)");
            }
            var previous = _catalog.Find(group);
            var changes = previous is null ? [] : PolicyDiff.Compare(previous.Policy, parsed.Policy);
            if (previous is not null && changes.Count == 0 && previous.Parsed.Text == text)
            {
                return new ApplyOutcome(group, Created: false, changes, _registry.Find(group)!.State);
            }
            if (parsed.Policy.ImagesPath is { } imagesPath)
            {
                GroupImageDirectory.Bind(_paths, group, imagesPath);
            }
            _store.Save(parsed);
            _standbys.Assign(group, parsed.Policy.Standby);
            var supervisor = await _registry.ApplyAsync(new AppliedPolicy(parsed, name, _time.GetUtcNow().UtcDateTime)).ConfigureAwait(false);
            if (previous is null || changes.Count > 0)
            {
                _events.Publish(new PolicyApplied(group, name, changes, Created: previous is null));
            }
            return new ApplyOutcome(group, previous is null, changes, supervisor.State);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw AgentException.Unavailable($"storing the policy of group {parsed.Policy.Group} failed: {e.Message}; check the state directory and apply it again");
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>Removes the policy of a stopped (or failed) group and its supervision; its checkpoints are kept.</summary>
    /// <exception cref="AgentException">NotFound: no policy; FailedPrecondition: the group runs (nothing was changed).</exception>
    public async Task DeleteAsync(string group, CancellationToken cancellationToken)
    {
        GroupNames.Require(group);
        await _serial.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var source = _catalog.Find(group)?.Source ?? "";
            if (!await _registry.RemoveAsync(group, () => _store.Delete(group), cancellationToken).ConfigureAwait(false))
            {
                throw AgentException.NotFound($"group {group} has no policy; see hactl status");
            }
            _events.Publish(new PolicyDeleted(group, source));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw AgentException.Unavailable($"deleting the stored policy of group {group} failed: {e.Message}; check the state directory and try again (nothing was changed)");
        }
        finally
        {
            _serial.Release();
        }
    }
}
