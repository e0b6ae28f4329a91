using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Events;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Operations.Launch;
using Understudy.GuestAgent.Operations.Lifecycle;
using Understudy.GuestAgent.Supervision.Policies;

namespace Understudy.GuestAgent.Supervision.Supervisors;

/// <summary>
/// The supervisors of the groups that have a policy. At agent start it loads the stored
/// policies, resumes supervising the groups found running (taken up after an agent restart) and
/// starts the autostart groups that are not; while it runs, it hands every process exit and
/// us-init death on the event stream to the group's supervisor (fault detection by exit
/// notification); at shutdown it stops supervision before the groups are stopped.
/// </summary>
internal sealed class SupervisorRegistry : IHostedService
{
    /// <summary>How long a group taken up after an agent restart is given for its processes to register again.</summary>
    private static readonly TimeSpan AdoptionPatience = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, GroupSupervisor> _supervisors = new(StringComparer.Ordinal);
    private readonly GroupSupervisorFactory _factory;
    private readonly PolicyCatalog _catalog;
    private readonly PolicyStore _store;
    private readonly EventBus _bus;
    private readonly GroupRegistry _groups;
    private readonly ILogger<SupervisorRegistry> _logger;
    private readonly List<Task> _autostarts = [];
    private EventSubscription? _subscription;
    private Task _dispatch = Task.CompletedTask;

    public SupervisorRegistry(
        GroupSupervisorFactory factory, PolicyCatalog catalog, PolicyStore store, EventBus bus, GroupRegistry groups,
        ILogger<SupervisorRegistry> logger)
    {
        _groups = groups;
        _factory = factory;
        _catalog = catalog;
        _store = store;
        _bus = bus;
        _logger = logger;
    }

    public GroupSupervisor? Find(string group) => _supervisors.GetValueOrDefault(group);

    public IReadOnlyList<GroupSupervisor> All() => _supervisors.Values.OrderBy(s => s.Group, StringComparer.Ordinal).ToList();

    /// <summary>Puts a policy in force: a new group gets a supervisor, a known one changes live.</summary>
    public async Task<GroupSupervisor> ApplyAsync(AppliedPolicy applied)
    {
        _catalog.Set(applied);
        if (_supervisors.TryGetValue(applied.Policy.Group, out var existing))
        {
            await existing.ApplyAsync(applied).ConfigureAwait(false);
            return existing;
        }
        return Add(applied);
    }

    /// <summary>
    /// Takes a stopped group's policy away (hactl group delete): its supervisor retires, its
    /// stored policy is deleted, and the group is no longer supervised.
    /// </summary>
    /// <returns>false if the group has no policy</returns>
    /// <exception cref="AgentException">FailedPrecondition: the group runs; nothing was changed.</exception>
    public async Task<bool> RemoveAsync(string group, Action deleteStored, CancellationToken cancellationToken)
    {
        if (Find(group) is not { } supervisor)
        {
            return false;
        }
        await supervisor.RetireAsync(deleteStored, cancellationToken).ConfigureAwait(false);
        _supervisors.TryRemove(new KeyValuePair<string, GroupSupervisor>(group, supervisor));
        _catalog.Remove(group);
        return true;
    }

    /// <summary>
    /// A migration from node <paramref name="source"/> restored the group here (its takeover's
    /// exclusive work): <paramref name="applied"/> is put in force, and the group's supervisor (new,
    /// or the one that held the standby's copy) supervises it where it is.
    /// </summary>
    public async Task TakeUpAsync(LifecycleScope scope, AppliedPolicy applied, string source)
    {
        _catalog.Set(applied);
        await Add(applied).TakeUpAsync(scope, applied, source).ConfigureAwait(false);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = _bus.Subscribe();
        _dispatch = Task.Run(() => DispatchAsync(_subscription), CancellationToken.None);
        foreach (var stored in _store.LoadAll())
        {
            var applied = new AppliedPolicy(stored.Parsed, stored.Parsed.Marks.Source, stored.AppliedUtc);
            _catalog.Set(applied);
            var supervisor = Add(applied);
            if (stored.RunsOn is { } runsOn)
            {
                // The group moved to another node: never started here by this copy, whatever autostart says.
                supervisor.BecomeStandbyCopy(runsOn);
            }
            else if (_groups.Find(applied.Policy.Group)?.Init is { Adopted: true, HasExited: false })
            {
                // Found running (taken up after an agent restart): supervised where it was, never started afresh.
                _autostarts.Add(Task.Run(() => AdoptAsync(supervisor), CancellationToken.None));
            }
            else if (supervisor.FollowUnsettledMigrationWhileStopped())
            {
                // Stopped here while its migration was unsettled: not started until that is settled, autostart or not.
                _logger.LogWarning("Group {Group} is stopped here, and its migration is not settled: it is not started here until it is", applied.Policy.Group);
            }
            else if (applied.Policy.Autostart)
            {
                // In the background: the API must answer while the group comes up.
                _autostarts.Add(Task.Run(() => AutostartAsync(supervisor), CancellationToken.None));
            }
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_supervisors.Values.Select(s => s.ShutdownAsync())).ConfigureAwait(false);
        await Task.WhenAll(_autostarts).ConfigureAwait(false);
        _subscription?.Dispose();
        await _dispatch.ConfigureAwait(false);
    }

    /// <summary>The group's supervisor, made (and attached to the group's lifecycle) only once.</summary>
    private GroupSupervisor Add(AppliedPolicy applied)
    {
        lock (_supervisors)
        {
            return _supervisors.TryGetValue(applied.Policy.Group, out var existing)
                ? existing
                : _supervisors[applied.Policy.Group] = _factory.Create(applied);
        }
    }

    private async Task AdoptAsync(GroupSupervisor supervisor)
    {
        try
        {
            await supervisor.AdoptAsync(AdoptionPatience, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException or OperationCanceledException)
        {
            _logger.LogWarning("Supervision of group {Group} did not resume: {Error}", supervisor.Group, e.Message);
        }
    }

    private async Task AutostartAsync(GroupSupervisor supervisor)
    {
        try
        {
            await supervisor.StartAsync("autostart", CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AgentException or OperationCanceledException)
        {
            // The supervisor published why (group.start-failed); the agent runs on.
            _logger.LogDebug("Autostart of group {Group} did not complete: {Error}", supervisor.Group, e.Message);
        }
    }

    private async Task DispatchAsync(EventSubscription subscription)
    {
        await foreach (var published in subscription.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            switch (published.Event)
            {
                case MemberExited exited when Find(exited.Group) is { } supervisor:
                    supervisor.OnExited(exited);
                    break;
                case GroupInitDied died when Find(died.Group) is { } supervisor:
                    supervisor.OnInitDied(died);
                    break;
            }
        }
    }
}
