using System.Text.Json;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>A group's replication to its standby, as `hactl status G --json` on its primary's agent shows it.</summary>
public static class StandbyReplication
{
    /// <summary>Polls `hactl status G --json` until the group's replication satisfies <paramref name="ok"/>; returns it.</summary>
    /// <param name="failure">makes the exception of a timeout, with what the caller knows of the group</param>
    public static async Task<JsonElement> WaitAsync(Hactl primary, string group, Func<JsonElement, bool> ok, string what,
        Func<string, Exception>? failure = null)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        JsonElement? last = null;
        while (true)
        {
            var status = (await primary.Run("status", group)).Ok().Json;
            last = status.Array("groups").Select(g => g.Prop("replication")).FirstOrDefault(r => r is { ValueKind: JsonValueKind.Object });
            if (last is { } replication && ok(replication))
            {
                return replication.Clone();
            }
            if (DateTime.UtcNow > deadline)
            {
                var message = $"timed out waiting for the replication of {group} to be {what}; last: {last}";
                throw failure?.Invoke(message) ?? new Xunit.Sdk.XunitException(message);
            }
            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>Waits until checkpoint <paramref name="id"/> is on the standby and the replication is in sync.</summary>
    public static Task<JsonElement> WaitInSync(Hactl primary, string group, string id, Func<string, Exception>? failure = null) =>
        WaitAsync(primary, group, r => r.Str("state") == "in-sync" && r.Str("lastReplicated") == id, $"checkpoint {id} replicated, in sync", failure);
}
