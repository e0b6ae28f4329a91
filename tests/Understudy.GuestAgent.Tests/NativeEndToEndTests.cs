using Understudy.GuestAgent.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>
/// The agent with the real native parts (us-init, libunderstudy.so, us-restorer): launch,
/// checkpoint, restore, checkpoint, restore. Runs when the native build is installed in out/
/// (./build.sh) or in $UNDERSTUDY_NATIVE_OUT.
/// </summary>
public sealed class NativeEndToEndTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task A_launched_group_survives_checkpoint_and_restore_twice()
    {
        var native = NativeBuild.Find();
        Skip.If(native is null, "the native parts are not built (run ./build.sh)");

        await using var agent = await TestAgent.StartAsync(output, nativeDir: native!.BinDir, interceptorPath: native.Interceptor);
        var launched = await agent.Api.LaunchAsync(new Contracts.LaunchRequest
        {
            Group = "e2e", App = "counter", Cwd = "/", Argv = { native.Workload("wl_counter") },
        });
        Assert.True(launched.Pid > 0);
        Assert.True(launched.HostPid > 0);
        var status = (await agent.Api.StatusAsync("e2e")).Groups[0];
        Assert.Equal(launched.Pid, Assert.Single(status.Members).Pid);
        Assert.EndsWith("wl_counter", status.Members[0].Program);

        for (var round = 1; round <= 2; round++)
        {
            var result = (await agent.Api.CheckpointAsync("e2e"))[^1].Result;
            Assert.Equal(1, result.Members);
            Assert.True(result.Bytes > 0);
            var verified = await agent.Api.VerifyImageAsync("e2e", result.Id);
            Assert.True(verified.Ok, $"checkpoint {result.Id} does not verify: {verified.Error}");

            var restored = await agent.Api.RestoreAsync("e2e", result.Id, force: true);
            Assert.Equal(result.Id, restored.Id);
            var member = Assert.Single(restored.Members);
            Assert.Equal(launched.Pid, member.Pid);
            Assert.Equal("running", member.State);
        }

        // The restored counter runs on: its output keeps growing.
        var outputLog = Path.Combine(agent.StateDir, "groups", "e2e", "output.log");
        var length = new FileInfo(outputLog).Length;
        await Eventually.TrueAsync(() => new FileInfo(outputLog).Length > length, "the restored counter prints");

        var hostPid = (await agent.Api.StatusAsync("e2e")).Groups[0].Members[0].HostPid;
        Assert.Equal(1, (await agent.Api.StopAsync("e2e")).Killed);
        Assert.Equal("stopped", (await agent.Api.StatusAsync("e2e")).Groups[0].State);
        await Eventually.TrueAsync(() => IsGone(hostPid), "the stopped member is gone");
    }

    [SkippableFact]
    public async Task A_member_that_is_killed_leaves_the_group()
    {
        var native = NativeBuild.Find();
        Skip.If(native is null, "the native parts are not built (run ./build.sh)");

        await using var agent = await TestAgent.StartAsync(output, nativeDir: native!.BinDir, interceptorPath: native.Interceptor);
        var launched = await agent.Api.LaunchAsync(new Contracts.LaunchRequest
        {
            Group = "e2e", App = "counter", Cwd = "/", Argv = { native.Workload("wl_counter"), "label with spaces" },
        });

        System.Diagnostics.Process.GetProcessById(launched.HostPid).Kill();

        await Eventually.TrueAsync(() => agent.Group("e2e").Members.Count == 0, "the killed member left");
        var group = (await agent.Api.StatusAsync("e2e")).Groups[0];
        Assert.Empty(group.Members);
        Assert.True(group.InitHostPid > 0);
    }

    [SkippableFact]
    public async Task A_group_that_forks_and_execs_is_restored_with_its_process_tree()
    {
        var native = NativeBuild.Find();
        Skip.If(native is null, "the native parts are not built (run ./build.sh)");

        await using var agent = await TestAgent.StartAsync(output, nativeDir: native!.BinDir, interceptorPath: native.Interceptor);
        foreach (var (app, program) in new[] { ("script", "wl_script.sh"), ("pipes", "wl_pipes"), ("threads", "wl_threads") })
        {
            await agent.Api.LaunchAsync(new Contracts.LaunchRequest { Group = "tree", App = app, Cwd = "/", Argv = { native.Workload(program) } });
        }
        // script -> (pipeline) -> exec wl_exec_parent (exec count 1) -> fork -> exec wl_exec_child (2); pipes forks its child.
        await Eventually.TrueAsync(() => Shape(agent) == "pipes:0 pipes:0 script:1 script:2 threads:0", "the process tree is complete");
        var before = agent.Group("tree").Members.Snapshot().Select(m => (m.Vpid, m.Vppid, m.App, m.ExecCount)).ToList();

        var result = (await agent.Api.CheckpointAsync("tree"))[^1].Result;
        Assert.Equal(5, result.Members);
        var restored = await agent.Api.RestoreAsync("tree", result.Id, force: true);

        Assert.Equal(before.Select(m => m.Vpid), restored.Members.Select(m => m.Pid));
        Assert.Equal(before, agent.Group("tree").Members.Snapshot().Select(m => (m.Vpid, m.Vppid, m.App, m.ExecCount)).ToList());
        // And once more from the restored group.
        var again = (await agent.Api.CheckpointAsync("tree"))[^1].Result;
        Assert.Equal(5, again.Members);
        Assert.Equal(5, (await agent.Api.RestoreAsync("tree", again.Id, force: true)).Members.Count);
    }

    private static string Shape(TestAgent agent) => string.Join(' ',
        agent.Group("tree").Members.Snapshot().Select(m => $"{m.App}:{m.ExecCount}").Order(StringComparer.Ordinal));

    /// <summary>Exited; a zombie counts as gone (this VM's PID 1 reaps orphans slowly).</summary>
    private static bool IsGone(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }
}

/// <summary>Where ./build.sh installed the native parts.</summary>
internal sealed record NativeBuild(string Root)
{
    public string BinDir => Path.Combine(Root, "bin");
    public string Interceptor => Path.Combine(Root, "lib", "libunderstudy.so");
    public string Workload(string name) => Path.Combine(Root, "tests", name);

    public static NativeBuild? Find()
    {
        var root = Environment.GetEnvironmentVariable("UNDERSTUDY_NATIVE_OUT") ?? RepositoryOut();
        if (root is null)
        {
            return null;
        }
        var build = new NativeBuild(root);
        return File.Exists(Path.Combine(build.BinDir, "us-init")) && File.Exists(build.Interceptor)
            && File.Exists(Path.Combine(build.BinDir, "us-restorer")) && File.Exists(build.Workload("wl_counter"))
            ? build
            : null;
    }

    private static string? RepositoryOut()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Appliance.sln")))
            {
                return Path.Combine(dir.FullName, "out");
            }
        }
        return null;
    }
}
