using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>`hactl demo`: it runs an agent of its own (understudy-agent) and leaves nothing behind.</summary>
[Trait("Category", "Integration")]
public sealed class DemoTests(ITestOutputHelper output)
{
    [Fact, Trait("Category", "Integration")]
    public async Task Demo_RunsEndToEnd_AndLeavesNoAgentBehind()
    {
        Native.BecomeSubreaper();
        var r = (await Hactl.RunRaw(Repo.Hactl, ["demo", "--json"], Timeouts.Command, output.WriteLine)).Ok();

        var report = r.Json;
        Assert.True(report.GetProperty("ok").GetBoolean(), $"the demo's report is not ok:\n{r}");
        Assert.Equal(report.GetProperty("checkpoint").GetProperty("id").GetString(), report.GetProperty("restore").GetProperty("id").GetString());
        var stateDir = report.GetProperty("stateDir").GetString()!;
        Assert.False(Directory.Exists(stateDir), $"the demo left its state directory {stateDir}");
        var left = Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out _))
            .Where(d => ReadCommandLine(d).Contains(stateDir, StringComparison.Ordinal))
            .ToList();
        Assert.True(left.Count == 0, $"processes of the demo are still running: {string.Join(", ", left.Select(Path.GetFileName))}");
    }

    private static string ReadCommandLine(string procDir)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procDir, "cmdline")).Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
