using Understudy.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.IntegrationTests;

/// <summary>
/// Process state a restore used to miss: files without a name, epoll sets shared across fork,
/// and pseudo-terminal pairs. Each workload checks its own state after two rounds of
/// checkpoint, kill -9 and restore.
/// </summary>
public sealed class FilesEpollPtyTests : IClassFixture<AgentFixture>
{
    private readonly AgentFixture _fx;
    private readonly ITestOutputHelper _out;

    public FilesEpollPtyTests(AgentFixture fx, ITestOutputHelper output) => (_fx, _out) = (fx, output);

    /// <summary>
    /// An unlinked file open twice and inherited by a child, a sealed memfd and a mapped memfd
    /// come back with their contents, sizes, offsets, flags and seals, shared as they were; the
    /// mapped memfd is still one object with its mapping, and stdout and stderr one open file.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task UnlinkedFilesAndMemfds_KillRestoreTwice_ContentsOffsetsAndSharing()
    {
        await using var g = _fx.OpenGroup("files", _out);
        await RunTwoRounds(g, ["files", "files-child"], Repo.Workload("wl_files"), _fx.TempDir);
    }

    /// <summary>
    /// An unlinked file larger than UNDERSTUDY_FILES_MAX fails the checkpoint with one line that
    /// names the limit, instead of leaving its contents out; the group runs on.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task UnlinkedFileOverTheLimit_CheckpointFailsWithOneLine_GroupRunsOn()
    {
        await using var g = _fx.OpenGroup("files-limit", _out);
        var env = new Dictionary<string, string> { ["UNDERSTUDY_FILES_MAX"] = "4096" };
        await g.LaunchWithEnv("files", env, Repo.Workload("wl_files"), _fx.TempDir);
        await g.WaitForMembers(m => m.Count == 2, "2 members");

        var r = (await g.Run("checkpoint", g.Name)).FailsWithOneLine();

        Assert.Contains("UNDERSTUDY_FILES_MAX", r.StderrLines[0]);
        Assert.Empty(await g.CheckpointIds());
        await g.WaitForCounts("files", 5, g.Log.Length);
    }

    /// <summary>
    /// An epoll set shared by a parent and its child, naming descriptors of both, reports its
    /// pending level-triggered events after a restore (and not its fired one-shot item), and
    /// is still one non-blocking open file in both.
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task SharedEpollSet_KillRestoreTwice_PendingEventsReported()
    {
        await using var g = _fx.OpenGroup("epoll", _out);
        await RunTwoRounds(g, ["epoll", "epoll-child"], Repo.Workload("wl_epoll"));
    }

    /// <summary>
    /// A pty pair comes back with its slave number, termios and window size, and with the
    /// bytes queued in both directions (a complete line and a partial one to the slave).
    /// </summary>
    [Fact, Trait("Category", "Integration")]
    public async Task PtyPair_KillRestoreTwice_SettingsAndQueuedBytes()
    {
        await using var g = _fx.OpenGroup("pty", _out);
        await RunTwoRounds(g, ["pty", "pty-child"], Repo.Workload("wl_pty"));
    }

    private static async Task RunTwoRounds(GroupSession g, string[] roles, params string[] command)
    {
        var launched = await g.Launch(roles[0], command);
        for (int round = 1; round <= 2; round++)
        {
            var ck = await g.Checkpoint(roles, members: 2);
            Assert.Contains(ck.Members, m => m.Pid == launched.Pid);
            await g.KillMembers(ck.Members);
            await g.RestoreAndVerify(ck, roles, roles);
        }
    }
}
