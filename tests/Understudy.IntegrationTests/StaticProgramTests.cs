using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// A statically linked program cannot be intercepted: a launch refuses it with one line before
/// it runs, directly or as the interpreter of a script, instead of leaving it running unprotected.
/// </summary>
public sealed class StaticProgramTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public StaticProgramTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task StaticProgram_LaunchRefusedWithOneLine_NeverRuns()
    {
        await using var g = _fx.OpenGroup("static", _out);
        var program = Repo.Workload("wl_static");

        var r = (await g.Run("launch", g.Name, "--app", "static", "--", program)).FailsWithOneLine();

        Assert.Contains("statically linked", r.StderrLines[0]);
        Assert.Contains(program, r.StderrLines[0]);
        Assert.Empty(await g.Members());
        Assert.False(g.OutputContains("static 1"), "the refused program ran");
    }

    [Fact, Trait("Category", "Integration")]
    public async Task ScriptOfAStaticInterpreter_LaunchRefusedWithOneLine_NeverRuns()
    {
        await using var g = _fx.OpenGroup("static-script", _out);
        var script = Path.Combine(_fx.TempDir, "static-script.sh");
        await File.WriteAllTextAsync(script, $"#!{Repo.Workload("wl_static")}\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var r = (await g.Run("launch", g.Name, "--app", "static", "--", script)).FailsWithOneLine();

        Assert.Contains("statically linked", r.StderrLines[0]);
        Assert.Empty(await g.Members());
        Assert.False(g.OutputContains("static 1"), "the refused program ran");
    }
}
