using Xunit.Abstractions;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// Runs a test on a lab and checks, from outside, that nothing of the lab is left once it is
/// down: no process, no namespace, no mount of its namespaces, and the host's links and mounts
/// as they were before (<see cref="LabFootprint"/>).
/// </summary>
public static class LabLeftovers
{
    /// <summary>
    /// Counts what is on the machine before a lab, brings one up, counts again, runs <paramref name="body"/>,
    /// takes the lab down (the session's dispose) and checks that nothing of it is left.
    /// </summary>
    public static async Task LeavesNothingBehind(ITestOutputHelper output, int nodes, Func<LabSession, LabFootprint, LabFootprint, Task> body,
        bool ignoreZombies = false)
    {
        var dir = LabSession.NewDir();
        var before = await LabFootprint.TakeAsync(dir);
        LabFootprint? during = null;
        try
        {
            await using (var lab = await LabSession.UpAsync(output, nodes, dir))
            {
                Assert.Equal(nodes, lab.Nodes.Count);
                during = await LabFootprint.TakeAsync(dir, pin: true);
                await body(lab, before, during);
            }

            await AssertNothingLeft(output, dir, before, during, ignoreZombies);
        }
        finally
        {
            during?.Dispose();
        }
    }

    public static async Task AssertNothingLeft(ITestOutputHelper output, string dir, LabFootprint before, LabFootprint during, bool ignoreZombies = false)
    {
        var after = await LabFootprint.TakeAsync(dir);
        Assert.True(after.Processes.Count == 0, $"processes of the lab left:\n{string.Join('\n', after.Processes)}");
        var inUse = LabFootprint.StillInUse(during.Namespaces, ignoreZombies);
        Assert.True(inUse.Count == 0, $"namespaces of the lab still in use: {string.Join(' ', inUse)}");
        var nsfs = File.ReadAllLines("/proc/self/mountinfo").Where(l => during.Namespaces.Any(ns => l.Contains(ns, StringComparison.Ordinal))).ToList();
        Assert.True(nsfs.Count == 0, $"mounts of the lab's namespaces left: {string.Join('\n', nsfs)}");
        Assert.Equal(before.HostLinks, after.HostLinks);
        Assert.Equal(before.HostMounts, after.HostMounts);
        output.WriteLine($"nothing left: {during.Processes.Count} processes and {during.Namespaces.Count} namespaces gone");
    }
}
