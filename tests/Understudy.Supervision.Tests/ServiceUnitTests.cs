using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// packaging/systemd/understudy-agent.service, the agent as a systemd service: systemd accepts the
/// file as it is shipped, and the agent that its ExecStart line starts leaves its groups running
/// on SIGTERM, so that `systemctl restart` (an upgrade) is not a fault. (KillMode=process, which
/// keeps systemd from killing the groups' processes itself, needs a real systemd to be seen.)
/// </summary>
public sealed class ServiceUnitTests(ITestOutputHelper output)
{
    private const string InstalledBin = "/opt/understudy/bin";
    private static string ShippedUnit => Path.Combine(Repo.Root, "packaging", "systemd", "understudy-agent.service");

    [Fact]
    public async Task SystemdVerifiesTheUnit_WithoutAnyWarning()
    {
        var dir = Directory.CreateTempSubdirectory("us-unit-");
        try
        {
            // The unit names the installed programs; the built ones stand in for them.
            var unit = Path.Combine(dir.FullName, "understudy-agent.service");
            await File.WriteAllTextAsync(unit, (await File.ReadAllTextAsync(ShippedUnit)).Replace(InstalledBin, Path.GetDirectoryName(Repo.Hactl), StringComparison.Ordinal));
            var verify = await Hactl.RunRaw("systemd-analyze", ["verify", unit], Timeouts.Wait, output.WriteLine);
            Assert.True(verify.ExitCode == 0 && verify.Stdout.Trim().Length == 0 && verify.Stderr.Trim().Length == 0,
                $"systemd-analyze verify found problems in {ShippedUnit}:\n{verify}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TheUnitsAgent_LeavesItsGroupRunningOnSigterm_AndTheNextOneTakesItUp()
    {
        var options = AgentRunOptionsOfTheUnit();
        var dir = Directory.CreateTempSubdirectory("us-unit-");
        var agent = new AgentProcess(dir.FullName);
        var hactl = new Hactl(agent.Address, output.WriteLine);
        var initPid = 0;
        try
        {
            await agent.StartAsync(options);
            var launched = (await hactl.Run("launch", "svc", "--app", "counter", "--", Repo.Workload("wl_counter"))).Ok().Json;
            var hostPid = (int)launched.Long("hostPid")!.Value;
            initPid = (int)(await hactl.Run("status", "svc")).Ok().Json.Array("groups").Single().Long("initHostPid")!.Value;

            await agent.StopAsync();
            Assert.True(Native.IsRunning(hostPid), $"the group's process {hostPid} died with the agent: the unit's options ({string.Join(' ', options)}) do not keep groups");

            // The next agent takes the group up; its process registers again by itself.
            await agent.StartAsync(options);
            var deadline = DateTime.UtcNow + Timeouts.Wait;
            List<int> pids;
            while ((pids = await HostPids(hactl)).Count == 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(Timeouts.Poll);
            }
            Assert.Equal([hostPid], pids);
            (await hactl.Run("stop", "svc")).Ok();
        }
        finally
        {
            await agent.StopAsync();
            // A group left behind by a failure: its us-init takes every process of it along.
            if (initPid > 0 && Native.IsRunning(initPid))
            {
                Native.Kill(initPid, Native.SIGKILL);
            }
            agent.CloseLog();
            dir.Delete(recursive: true);
        }
    }

    private static async Task<List<int>> HostPids(Hactl hactl) =>
        (await hactl.Run("status", "svc")).Ok().Json.Array("groups").SelectMany(g => g.Array("members"))
            .Select(m => (int)m.Long("hostPid")!.Value).ToList();

    /// <summary>The `agent run` options of the unit's ExecStart line, but for --listen and --state-dir (a test's own).</summary>
    private static string[] AgentRunOptionsOfTheUnit()
    {
        var exec = File.ReadLines(ShippedUnit).Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal))["ExecStart=".Length..];
        var words = exec.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([$"{InstalledBin}/hactl", "agent", "run"], words[..3]);
        var options = new List<string>();
        for (int i = 3; i < words.Length; i++)
        {
            if (words[i] is "--listen" or "--state-dir")
            {
                i++;
                continue;
            }
            options.Add(words[i]);
        }
        return [.. options];
    }
}
