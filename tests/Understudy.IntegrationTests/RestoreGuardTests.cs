using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

// Issue 10: "hactl restore of a running group silently kills it and rolls it back, with exit code
// 0. Two restores at once both report success. A restore of a running group is refused unless the
// user asks for it (--force), and restores of one group are serialised."

[Trait("Category", "Integration")]
public sealed class RestoreGuardTests : IClassFixture<AgentFixture>
{
    private static readonly string[] Tags = ["count"];
    private static readonly string[] Roles = ["memory"];
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public RestoreGuardTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    [Fact, Trait("Category", "Integration")]
    public async Task RestoreOfARunningGroup_IsRefusedWithOneLine_UntilForced()
    {
        await using var g = _fx.OpenGroup("guard", _out);
        var launched = await g.Launch("memory", Repo.Workload("wl_memory"), "8");
        var ck = await g.Checkpoint(Tags, members: 1);

        var refused = await g.Run("restore", g.Name);
        refused.FailsWithOneLine();
        Assert.Contains($"group {g.Name} is running (1 process): a restore would kill them", refused.Stderr);
        Assert.Equal(launched.HostPid, Assert.Single(await g.Members()).HostPid);

        (await g.Run("restore", g.Name, "--force")).Ok();
        var after = Assert.Single(await g.Members());
        Assert.Equal(launched.Pid, after.Pid);
        Assert.NotEqual(launched.HostPid, after.HostPid);
        await g.Verify([after], Roles);
        _out.WriteLine($"forced restore of checkpoint {ck.Id}: host pid {launched.HostPid} -> {after.HostPid}");
    }

    [Fact, Trait("Category", "Integration")]
    public async Task TwoRestoresAtOnce_OneRestores_TheOtherIsRefused()
    {
        await using var g = _fx.OpenGroup("twice", _out);
        await g.Launch("memory", Repo.Workload("wl_memory"), "8");
        var ck = await g.Checkpoint(Tags, members: 1);
        await g.KillMembers(ck.Members);

        var both = await Task.WhenAll(g.Run("restore", g.Name), g.Run("restore", g.Name));

        var restored = Assert.Single(both, r => r.ExitCode == 0);
        var refused = Assert.Single(both, r => r.ExitCode != 0);
        refused.FailsWithOneLine();
        Assert.Contains("is running (1 process)", refused.Stderr);
        var member = Assert.Single(await g.Members());
        Assert.Equal(restored.Json.Prop("members")?.EnumerateArray().Single().Long("hostPid"), member.HostPid);
        await g.Verify([member], Roles);
    }

    // "A program replaced on disk since the checkpoint (an upgrade) restores successfully and
    // dies at once with SIGSEGV."
    [Fact, Trait("Category", "Integration")]
    public async Task ProgramReplacedSinceTheCheckpoint_RestoreAndVerifyRefuseItByName_TheOldFileBackRestores()
    {
        await using var g = _fx.OpenGroup("upgrade", _out);
        var program = Path.Combine(_fx.TempDir, $"{g.Name}-wl_memory");
        File.Copy(Repo.Workload("wl_memory"), program);
        await g.Launch("memory", program, "8");
        var ck = await g.Checkpoint(Tags, members: 1);
        await g.KillMembers(ck.Members);

        // The upgrade: a new file under the program's name; the old one kept aside.
        File.Move(program, program + ".old");
        File.Copy(Repo.Workload("wl_memory"), program);

        var refused = await g.Run("restore", g.Name);
        refused.FailsWithOneLine();
        Assert.Contains($"{program}, mapped by process {ck.Members[0].Pid}, was replaced since the checkpoint", refused.Stderr);
        Assert.Contains("start the group afresh, or put the old file back", refused.Stderr);
        var verify = await g.Run("images", "verify", g.Name, ck.Id);
        Assert.NotEqual(0, verify.ExitCode);
        Assert.Contains("was replaced since the checkpoint", verify.Stdout + verify.Stderr);
        Assert.Empty(await g.Members());

        File.Move(program + ".old", program, overwrite: true);
        await g.RestoreAndVerify(ck, Tags, Roles);
    }
}
