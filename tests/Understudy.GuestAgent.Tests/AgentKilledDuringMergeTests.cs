using System.Diagnostics;
using Understudy.GuestAgent.Tests.Infrastructure;
using Understudy.Images;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>
/// A real agent process (out/bin/hactl agent run) killed with SIGKILL in the middle of a
/// background merge, held there by UNDERSTUDY_AGENT_FAULT=slow-merge: its merged files are
/// written, its manifest not yet replaced. Nothing is lost: the chain still verifies, and the
/// next agent on the same state directory cleans up and merges it again. Test members on the
/// agent's member socket write the images, so no native incremental support is needed.
/// </summary>
public sealed class AgentKilledDuringMergeTests(ITestOutputHelper output)
{
    [SkippableFact]
    public async Task A_kill_of_the_agent_during_a_merge_loses_nothing()
    {
        var hactl = NativeBuild.Find() is { } native ? Path.Combine(native.BinDir, "hactl") : null;
        Skip.If(hactl is null || !File.Exists(hactl), "out/bin/hactl is not built (run ./build.sh)");

        var root = TestAgent.NewRoot();
        Directory.CreateDirectory(root);
        try
        {
            var state = Path.Combine(root, "state");
            var checkpoint2 = Path.Combine(state, "groups", "web", "checkpoints", "000002");
            SortedDictionary<ulong, byte[]> expected;
            using (var agent = StartAgent(hactl!, root, state))
            {
                using var api = new AgentApiClient(Path.Combine(root, "api.sock"));
                await Eventually.TrueAsync(() => File.Exists(Path.Combine(state, "coord.sock")) && File.Exists(Path.Combine(root, "api.sock")), "the agent listens");
                await using var db = await TestMember.JoinAsync(Path.Combine(state, "coord.sock"), "web", "db", 2);
                db.Tracking = true;
                db.SetPages(64);

                var first = api.CheckpointAsync("web");
                await db.TakePartAsync();
                await first;
                db.Touch(1, 2, 40);
                db.Drop(63);
                var second = api.CheckpointAsync("web");
                await db.TakePartAsync();
                Assert.Equal("incremental", (await second)[^1].Result.Kind);
                expected = db.PagesAt(2);

                // The merge holds with its merged files written and the old manifest in place.
                await Eventually.TrueAsync(() => agent.Log.Contains("Fault slow-merge"), "the merge holds before replacing the manifest");
                Assert.True(File.Exists(Path.Combine(checkpoint2, "2.merged.meta")));
                agent.Process.Kill(); // SIGKILL
                await agent.Process.WaitForExitAsync();
                output.WriteLine(agent.Log.ToString());
            }

            // The chain is intact: the old manifest, its incremental image and its base.
            var store = new CheckpointStore(state);
            var chain = store.Verify("web", "000002");
            Assert.Equal(("incremental", null), (chain.Kind, chain.Merged));
            Assert.Contains("2.merged.pages", Directory.EnumerateFiles(checkpoint2).Select(Path.GetFileName));

            // The next agent removes what the killed merge left and merges again.
            foreach (var socket in Directory.EnumerateFiles(root, "*.sock", SearchOption.AllDirectories))
            {
                File.Delete(socket);
            }
            await using var again = await TestAgent.StartAsync(output, root: root);
            string[] mergedFiles = ["2.merged.meta", "2.merged.pages", "manifest.json"];
            await Eventually.TrueAsync(
                () => again.Store.LoadManifest("web", "000002").Merged is not null
                      && Directory.EnumerateFiles(checkpoint2).Select(Path.GetFileName).Order().SequenceEqual(mergedFiles),
                "checkpoint 000002 is merged and its incremental files are gone");
            var merged = again.Store.Verify("web", "000002");
            var image = ImageFiles.Of(checkpoint2, merged.Members[0]);
            var actual = new SortedDictionary<ulong, byte[]>();
            foreach (var run in ProcessImage.ReadMeta(image.Meta).Vmas.SelectMany(v => v.Runs))
            {
                var pages = PageRunReader.ReadPages(image.Pages, run);
                for (ulong i = 0; i < run.NPages; i++)
                {
                    actual[run.Addr + i * 4096] = pages.AsSpan((int)(i * 4096), 4096).ToArray();
                }
            }
            Assert.Equal(expected.Keys, actual.Keys);
            Assert.All(expected, p => Assert.Equal(p.Value, actual[p.Key]));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static RunningAgent StartAgent(string hactl, string root, string state)
    {
        var start = new ProcessStartInfo(hactl)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "agent", "run", "--listen", "unix:" + Path.Combine(root, "api.sock"), "--state-dir", state })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["UNDERSTUDY_AGENT_FAULT"] = "slow-merge:120";
        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {hactl}");
        var agent = new RunningAgent(process);
        process.OutputDataReceived += (_, e) => agent.Append(e.Data);
        process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    private sealed class RunningAgent(Process process) : IDisposable
    {
        private readonly System.Text.StringBuilder _log = new();

        public Process Process { get; } = process;

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public void Append(string? line)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit();
            }
            Process.Dispose();
        }
    }
}
