using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;

namespace Understudy.GuestAgent.Model.Groups;

/// <summary>The groups this agent knows in memory, by name.</summary>
internal sealed class GroupRegistry
{
    private readonly ConcurrentDictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly TimeSpan _registrationGrace;
    private readonly TimeProvider _time;
    private readonly ILogger<Group> _groupLogger;

    public GroupRegistry(IOptions<AgentOptions> options, TimeProvider time, ILogger<Group> groupLogger)
    {
        _registrationGrace = options.Value.RegistrationGrace;
        _time = time;
        _groupLogger = groupLogger;
    }

    /// <summary>The caller validated <paramref name="name"/> (see GroupNames).</summary>
    public Group GetOrCreate(string name) =>
        _groups.GetOrAdd(name, n => new Group(n, _registrationGrace, _time, _groupLogger));

    public Group? Find(string name) => _groups.GetValueOrDefault(name);

    public IReadOnlyList<Group> All() => _groups.Values.OrderBy(g => g.Name, StringComparer.Ordinal).ToList();
}
