using Microsoft.Extensions.Options;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// How many checkpoints the store keeps of a group: its policy's checkpoints.retention, else the
/// agent's --retention, so that a group launched by hand (or moved here by a migration) does not
/// fill the disk.
/// </summary>
internal sealed class CheckpointRetention(PolicyCatalog policies, IOptions<AgentOptions> options) : IRetentionPolicy
{
    public int? RetentionOf(string group) =>
        policies.Find(group)?.Policy.Checkpoints.Retention ?? (options.Value.Retention > 0 ? options.Value.Retention : null);
}
