namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>
/// The launch order of a group: every application after the ones it names in 'after', and
/// otherwise in the order of the file. Unknown names and cycles are refused at the 'after'
/// entry that causes them.
/// </summary>
internal static class LaunchOrder
{
    /// <exception cref="PolicyException">an 'after' entry names no application, or the entries form a cycle.</exception>
    public static IReadOnlyList<AppPolicy> Sort(IReadOnlyList<AppEntry> entries, PolicyMarks marks)
    {
        var byName = entries.ToDictionary(e => e.App.Name, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            for (var i = 0; i < entry.App.After.Count; i++)
            {
                var dependency = entry.App.After[i];
                if (dependency == entry.App.Name)
                {
                    throw marks.ErrorAt(entry.AfterPaths[i], $"{dependency} cannot start after itself");
                }
                if (!byName.ContainsKey(dependency))
                {
                    throw marks.ErrorAt(entry.AfterPaths[i],
                        $"'{dependency}' is not an application of this group (they are: {string.Join(", ", byName.Keys)})");
                }
            }
        }
        ThrowOnCycle(entries, byName, marks);

        var placed = new HashSet<string>(StringComparer.Ordinal);
        var order = new List<AppPolicy>();
        while (order.Count < entries.Count)
        {
            // No cycle, so some application always has all its dependencies placed.
            var next = entries.First(e => !placed.Contains(e.App.Name) && e.App.After.All(placed.Contains));
            placed.Add(next.App.Name);
            order.Add(next.App);
        }
        return order;
    }

    private static void ThrowOnCycle(IReadOnlyList<AppEntry> entries, Dictionary<string, AppEntry> byName, PolicyMarks marks)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        var path = new List<string>();
        foreach (var entry in entries)
        {
            Visit(entry);
        }

        void Visit(AppEntry entry)
        {
            var name = entry.App.Name;
            if (done.Contains(name))
            {
                return;
            }
            path.Add(name);
            for (var i = 0; i < entry.App.After.Count; i++)
            {
                var dependency = entry.App.After[i];
                var at = path.IndexOf(dependency);
                if (at >= 0)
                {
                    // Each of path[at..] starts after the next, and the last one after path[at].
                    var cycle = path.Skip(at).Append(dependency);
                    throw marks.ErrorAt(entry.AfterPaths[i],
                        $"the launch order has a cycle: {string.Join(" -> ", cycle)} " +
                        "(each starts only after the next is ready): remove one of these 'after' entries");
                }
                Visit(byName[dependency]);
            }
            path.RemoveAt(path.Count - 1);
            done.Add(name);
        }
    }
}
