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
        try
        {
            await agent.StartAsync(options);
            var hactl = new Hactl(agent.Address, output.WriteLine);
            var launched = (await hactl.Run("launch", "svc", "--app", "counter", "--", Repo.Workload("wl_counter"))).Ok().Json;
            var hostPid = (int)launched.Long("hostPid")!.Value;

            await agent.StopAsync();
            Assert.True(Native.IsRunning(hostPid), $"the group's process {hostPid} died with the agent: the unit's options ({string.Join(' ', options)}) do not keep groups");

            await agent.StartAsync(options);
            var members = (await hactl.Run("status", "svc")).Ok().Json.Array("groups").Single().Array("members");
            Assert.Equal(hostPid, (int)members.Single().Long("hostPid")!.Value);
            (await hactl.Run("stop", "svc")).Ok();
        }
        finally
        {
            await agent.StopAsync();
            await ProcessSweeper.SweepAsync(Timeouts.Cleanup);
            agent.CloseLog();
            dir.Delete(recursive: true);
        }
    }

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
