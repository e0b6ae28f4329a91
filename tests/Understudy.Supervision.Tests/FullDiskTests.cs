using System.Text.Json;
using Understudy.Supervision.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Understudy.Supervision.Tests;

/// <summary>
/// Issue 10, item 6: the state directory's file system fills up, then space is freed. The agent
/// keeps working (launches and checkpoints report the real error, never an internal one), the
/// event history loses nothing, and a line a crash cut short does not swallow the next event.
/// </summary>
public sealed class FullDiskTests(SmallDiskFixture fx, ITestOutputHelper output) : IClassFixture<SmallDiskFixture>
{
    [Fact]
    public async Task FullStateDirectory_LosesNoEvent_AndTheAgentKeepsWorking()
    {
        await using var g = fx.Group("disk", output);
        (await g.Run("launch", g.Name, "--app", "ticker", "--", Workloads.Service, "ticker")).Ok();
        (await g.Run("checkpoint", g.Name)).Ok();
        var mark = await g.Mark();

        // The file system of the state directory fills up. The journal's last page may still
        // hold a few events: checkpoints fail until one event no longer fits.
        var filler = Path.Combine(fx.Agent.StateDir, "filler");
        FillUp(filler);
        for (var attempt = 0; ; attempt++)
        {
            var failed = await g.Run("checkpoint", g.Name);
            failed.FailsWithOneLine();
            Assert.Contains("no space left on device", failed.Stderr, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("closed Stream", failed.Stderr);
            FillUp(filler);
            var events = await g.Events(mark);
            if (events.Any(e => !JournalSeqs().Contains(e.Seq)))
            {
                break;
            }
            Assert.True(attempt < 50, "the journal's file system never filled up");
        }
        var launched = await g.Run("launch", g.Name, "--app", "second", "--", Workloads.Service, "ticker");
        Assert.DoesNotContain("closed Stream", launched.Stderr);
        Assert.DoesNotContain("internal error", launched.Stderr);
        launched.Ok();

        // The events of that time are served from memory meanwhile.
        var whileFull = await g.Events(mark);
        Assert.Contains(whileFull, e => e.Type == "checkpoint.failed");
        Assert.Contains(whileFull, e => e.Type == "member.launched" && e.Field("app") == "second");
        var notWritten = whileFull.Select(e => e.Seq).Where(s => !JournalSeqs().Contains(s)).ToList();
        Assert.NotEmpty(notWritten);

        // Space comes back: the kept events are written, in order, and checkpoints work again.
        File.Delete(filler);
        await g.WaitUntil(() => Task.FromResult(notWritten.All(JournalSeqs().Contains)), "the kept events to be written to events.jsonl");
        (await g.Run("checkpoint", g.Name)).Ok();

        // A crash cut the last line short; after the restart the next event still has a line of its own.
        await fx.Agent.StopAsync();
        await File.AppendAllTextAsync(Journal, "{\"seq\":999999,\"time\":\"2026-");
        await fx.Agent.StartAsync();
        var restarted = await g.Mark();
        (await g.Run("launch", g.Name, "--app", "third", "--", Workloads.Service, "ticker")).Ok();
        await g.WaitForEvent("member.launched", restarted, e => e.Field("app") == "third");

        var lines = File.ReadAllLines(Journal);
        var seqs = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        var all = await g.Events();
        Assert.Contains(all, e => e.Type == "member.launched" && e.Field("app") == "third");
        Assert.Equal(whileFull.Select(e => (e.Seq, e.Type)), all.Where(e => whileFull.Any(w => w.Seq == e.Seq)).Select(e => (e.Seq, e.Type)));
    }

    private string Journal => Path.Combine(fx.Agent.StateDir, "events.jsonl");

    private HashSet<long> JournalSeqs()
    {
        using var stream = new FileStream(Journal, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var text = new StreamReader(stream).ReadToEnd();
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => { try { return JsonDocument.Parse(l).RootElement.GetProperty("seq").GetInt64(); } catch (JsonException) { return -1; } })
            .ToHashSet();
    }

    /// <summary>Writes zeros to <paramref name="path"/> until the file system says it is full.</summary>
    private static void FillUp(string path)
    {
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        var block = new byte[64 * 1024];
        try
        {
            while (true)
            {
                file.Write(block);
            }
        }
        catch (IOException)
        {
        }
        var page = new byte[1];
        try
        {
            while (true)
            {
                file.Write(page);
            }
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>An agent whose state directory is a small tmpfs of its own, unmounted at the end whatever happened.</summary>
public sealed class SmallDiskFixture : SupervisionFixture
{
    protected override async Task PrepareAsync()
    {
        Directory.CreateDirectory(Agent.StateDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        (await Hactl.RunRaw("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "understudy-test", Agent.StateDir], Timeouts.Cleanup)).Ok();
    }

    protected override async Task CleanUpAsync() =>
        await Hactl.RunRaw("umount", ["-l", Agent.StateDir], Timeouts.Cleanup);
}
