using System.Text.Json;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>An event of a group on a node, as `hactl events GROUP --json` lists it.</summary>
public sealed record LabEvent(long Seq, string Type, string Message);

/// <summary>A group's events and policy on a lab node, read with hactl.</summary>
public static class LabEvents
{
    /// <summary>The group's events on <paramref name="node"/> after sequence number <paramref name="after"/>.</summary>
    public static async Task<IReadOnlyList<LabEvent>> Since(LabSession lab, string node, string group, long after) =>
        (await lab.On(lab.Node(node)).Run("events", group)).Ok().Json.Array("events")
            .Select(e => new LabEvent(e.Long("seq")!.Value, e.Str("type")!, e.Str("message") ?? ""))
            .Where(e => e.Seq > after).ToList();

    /// <summary>The sequence number of the group's newest event on <paramref name="node"/> (0 for none).</summary>
    public static async Task<long> LastSeq(LabSession lab, string node, string group) =>
        (await Since(lab, node, group, 0)).Select(e => e.Seq).DefaultIfEmpty(0).Max();

    /// <summary>Waits for the group's first event of <paramref name="type"/> after <paramref name="after"/> on <paramref name="node"/>.</summary>
    public static async Task<LabEvent> WaitFor(LabSession lab, string node, string group, string type, long after)
    {
        var deadline = DateTime.UtcNow + Timeouts.Wait;
        while (true)
        {
            var events = await Since(lab, node, group, after);
            if (events.FirstOrDefault(e => e.Type == type) is { } found)
            {
                return found;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException(
                    $"timed out waiting for {type} of {group} on {node}; events since: {string.Join(", ", events.Select(e => e.Type))}");
            }
            await Task.Delay(Timeouts.Poll);
        }
    }

    /// <summary>hactl group show GROUP --json on <paramref name="node"/>.</summary>
    public static async Task<JsonElement> Show(LabSession lab, string node, string group) =>
        (await lab.On(lab.Node(node)).Run("group", "show", group)).Ok().Json;
}
