using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.GuestAgent.Operations.Checkpoints;
using Understudy.GuestAgent.Operations.Store;
using Understudy.GuestAgent.Tests.Infrastructure;
using Understudy.Images;
using Xunit.Abstractions;

namespace Understudy.GuestAgent.Tests;

/// <summary>
/// Incremental checkpoints through the agent, with test members on the real member socket that
/// write full or incremental images as the interceptor does: the kind policy, the background
/// merge, the recovery of a half-done merge at start, and a restore that merges first.
/// </summary>
public sealed class IncrementalCheckpointTests(ITestOutputHelper output)
{
    private static void NoBackgroundMerges(AgentOptions o) => o.BackgroundMerges = false;

    /// <summary>One checkpoint with every member taking part; returns its result.</summary>
    private static async Task<Contracts.CheckpointResult> CheckpointAsync(TestAgent agent, bool full, params TestMember[] members)
    {
        var call = agent.Api.CheckpointAsync("web", full);
        await Task.WhenAll(members.Select(m => m.TakePartAsync()));
        return (await call)[^1].Result;
    }

    private static async Task<TestMember> TrackingMemberAsync(TestAgent agent, int vpid, int pages = 8)
    {
        var member = await TestMember.JoinAsync(agent, "web", $"app{vpid}", vpid);
        member.Tracking = true;
        member.SetPages(pages);
        return member;
    }

    [Fact]
    public async Task The_first_checkpoint_is_full_then_incremental_and_full_when_asked()
    {
        await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges);
        await using var db = await TrackingMemberAsync(agent, 2);

        var first = await CheckpointAsync(agent, false, db);
        db.Touch(3);
        var second = await CheckpointAsync(agent, false, db);
        db.Touch(4);
        var forced = await CheckpointAsync(agent, true, db);
        db.Touch(5);
        var fourth = await CheckpointAsync(agent, false, db);

        Assert.Equal(
            ["WRITE 000001 full 0", "WRITE 000002 incremental 1", "WRITE 000003 full 0", "WRITE 000004 incremental 3"],
            db.WriteLines.Select(WithoutDirectory));
        Assert.Equal([("full", ""), ("incremental", "000001"), ("full", ""), ("incremental", "000003")],
            new[] { first, second, forced, fourth }.Select(r => (r.Kind, r.BaseId)));
        // The increment holds the one page written since: a fraction of the full image.
        Assert.True(second.Bytes < first.Bytes / 2, $"incremental {second.Bytes} bytes, full {first.Bytes}");

        var manifest = agent.Store.Verify("web", second.Id);
        Assert.Equal(("incremental", "incremental", 1L), (manifest.Kind, manifest.Members[0].Kind, manifest.Members[0].BaseSeq));
        var listed = (await agent.Api.ListImagesAsync("web")).Checkpoints;
        Assert.Equal([("full", ""), ("incremental", "000001"), ("full", ""), ("incremental", "000003")], listed.Select(c => (c.Kind, c.BaseId)));
    }

    [Fact]
    public async Task A_process_that_cannot_write_incremental_makes_a_full_image_and_the_kind_follows_the_members()
    {
        await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges);
        await using var tracked = await TrackingMemberAsync(agent, 2);
        await using var untracked = await TestMember.JoinAsync(agent, "web", "legacy", 3); // no tracker: always full

        await CheckpointAsync(agent, false, tracked, untracked);
        tracked.Touch(1);
        var mixed = await CheckpointAsync(agent, false, tracked, untracked);
        tracked.Tracking = false;
        var allFull = await CheckpointAsync(agent, false, tracked, untracked);

        Assert.Equal("incremental", mixed.Kind);
        Assert.Equal(["incremental", "full"], agent.Store.LoadManifest("web", mixed.Id).Members.Select(m => m.Kind));
        Assert.Equal(("full", ""), (allFull.Kind, allFull.BaseId));
        Assert.Equal("WRITE 000003 incremental 2", WithoutDirectory(untracked.WriteLines[2]));
        agent.Store.Verify("web", mixed.Id);
    }

    [Fact]
    public async Task Every_full_every_th_checkpoint_after_a_full_one_is_full()
    {
        await using var agent = await TestAgent.StartAsync(output, o =>
        {
            o.BackgroundMerges = false;
            o.FullEvery = 2;
        });
        await using var db = await TrackingMemberAsync(agent, 2);

        var kinds = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            db.Touch(i % db.PageCount);
            kinds.Add((await CheckpointAsync(agent, false, db)).Kind);
        }

        Assert.Equal(["full", "incremental", "incremental", "full", "incremental", "incremental", "full"], kinds);
    }

    [Fact]
    public async Task A_chain_the_merges_have_not_reached_ends_with_a_full_checkpoint_before_a_restore_would_refuse_it()
    {
        await using var agent = await TestAgent.StartAsync(output, o =>
        {
            o.BackgroundMerges = false;
            o.FullEvery = 100_000;
            o.ChainLimitPercent = 1_000_000;
        });
        await using var db = await TrackingMemberAsync(agent, 2, pages: 10);

        var kinds = new List<string>();
        for (var i = 0; i <= CheckpointKindPolicy.MaxUnmerged + 1; i++)
        {
            db.Touch(i % db.PageCount);
            kinds.Add((await CheckpointAsync(agent, false, db)).Kind);
        }

        // The first full, then MaxUnmerged incremental ones, then full again.
        Assert.Equal("full", kinds[0]);
        Assert.All(kinds[1..^1], kind => Assert.Equal("incremental", kind));
        Assert.Equal("full", kinds[^1]);
    }

    [Fact]
    public async Task A_chain_that_grows_past_the_size_limit_ends_with_a_full_checkpoint()
    {
        await using var agent = await TestAgent.StartAsync(output, o =>
        {
            o.BackgroundMerges = false;
            o.ChainLimitPercent = 50;
        });
        await using var db = await TrackingMemberAsync(agent, 2, pages: 10);

        await CheckpointAsync(agent, false, db);       // full: 10 pages
        db.Touch(0, 1, 2);
        var small = await CheckpointAsync(agent, false, db);   // 3 pages: 30% of the full one
        db.Touch(3, 4, 5);
        var reaching = await CheckpointAsync(agent, false, db);  // 6 pages in the chain: 60%
        db.Touch(6);
        var next = await CheckpointAsync(agent, false, db);

        Assert.Equal(["incremental", "incremental", "full"], new[] { small.Kind, reaching.Kind, next.Kind });
    }

    [Fact]
    public async Task A_checkpoint_after_an_aborted_one_falls_back_to_full_in_the_members()
    {
        await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges);
        await using var db = await TrackingMemberAsync(agent, 2);
        await CheckpointAsync(agent, false, db);

        var failing = agent.Api.CheckpointAsync("web");
        await db.ExpectAsync("PREPARE");
        await db.SendAsync("FAILED cannot stop thread 9");
        await db.ResumeAsync("ABORT");
        await Assert.ThrowsAsync<RpcException>(() => failing);

        db.Touch(1);
        var after = await CheckpointAsync(agent, false, db);

        // Still asked on the last committed checkpoint; the member, whose tracking was lost, wrote full.
        Assert.Equal("WRITE 000002 incremental 1", WithoutDirectory(db.WriteLines[^1])); // the aborted one's id is free again
        Assert.Equal("full", after.Kind);
    }

    [Fact]
    public async Task An_image_on_another_base_than_asked_fails_the_checkpoint()
    {
        await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges);
        await using var db = await TrackingMemberAsync(agent, 2);
        await CheckpointAsync(agent, true, db);

        var call = agent.Api.CheckpointAsync("web", full: true);
        await db.FreezeAsync();
        var write = await db.ExpectAsync("WRITE");
        // A broken interceptor: writes an incremental image although a full one was asked for.
        var dir = TokenCodec.Decode(write[2]);
        WriteIncrementalImage(dir, vpid: 2, seq: 2, baseSeq: 1);
        await db.SendAsync("CAPTURED");
        await db.ResumeAsync();
        await db.SendAsync("WRITTEN 1 1 incremental");
        await db.ResumeAsync("ABORT");

        var error = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(StatusCode.Aborted, error.StatusCode);
        Assert.Contains("member 2 (app2) wrote an incremental image on checkpoint 1 but a full image was asked for", error.Status.Detail);
    }

    [Fact]
    public async Task A_committed_incremental_checkpoint_is_merged_in_the_background_into_a_verified_full_image()
    {
        await using var agent = await TestAgent.StartAsync(output);
        await using var db = await TrackingMemberAsync(agent, 2, pages: 12);
        await using var worker = await TrackingMemberAsync(agent, 3, pages: 4);
        db.Files["/var/lib/db/data"] = [.. Enumerable.Range(0, 7000).Select(i => (byte)i)];

        var first = await CheckpointAsync(agent, false, db, worker);
        db.Touch(2, 7);
        db.Drop(9);
        worker.Touch(0);
        db.Files["/var/lib/db/data"] = [1, 2, 3];
        var second = await CheckpointAsync(agent, false, db, worker);
        db.Touch(7, 11);
        var third = await CheckpointAsync(agent, false, db, worker);
        Assert.Equal(["full", "incremental", "incremental"], new[] { first.Kind, second.Kind, third.Kind });

        await WaitUntilMergedAsync(agent, second.Id, third.Id);

        foreach (var (result, seq) in new[] { (second, 2L), (third, 3L) })
        {
            var manifest = agent.Store.Verify("web", result.Id);
            Assert.Equal("full", manifest.Kind);
            Assert.Equal(new MergeRecord(seq - 1, result.Bytes, manifest.Merged!.MergedUtc), manifest.Merged);
            Assert.Equal(["2.merged.meta", "3.merged.meta"], manifest.Members.Select(m => m.Meta));
            Assert.All(manifest.Members, m => Assert.Equal(("full", 0L), (m.Kind, m.BaseSeq)));
            var dir = agent.Store.CheckpointDir("web", result.Id);
            Assert.Equal(["2.merged.meta", "2.merged.pages", "3.merged.meta", "3.merged.pages", "manifest.json"],
                Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order());
            foreach (var member in new[] { db, worker })
            {
                var files = ImageFiles.Of(dir, manifest.Members.Single(m => m.Vpid == member.Vpid));
                AssertSamePages(member.PagesAt(seq), FullImagePages.Read(files));
            }
            var image = ProcessImage.ReadMeta(Path.Combine(dir, "2.merged.meta"));
            Assert.Equal([("/var/lib/db/data", 3ul)], image.Files.Select(f => (f.Path, f.Size)));
        }
        var listed = (await agent.Api.ListImagesAsync("web")).Checkpoints;
        Assert.Equal([(false, ""), (true, "000001"), (true, "000002")], listed.Select(c => (c.Merged, c.BaseId)));
        Assert.All(listed, c => Assert.Equal("full", c.Kind));

        // The merged checkpoints still count as the incremental ones they were.
        db.Touch(1);
        Assert.Equal(("incremental", "000003"), ((await CheckpointAsync(agent, false, db, worker)) is var fourth ? (fourth.Kind, fourth.BaseId) : default));
    }

    // Checkpoints that come faster than merges: the newest one waiting is merged first, in one
    // pass over its chain, then the next newest. Before, they were merged oldest first, each one
    // rewriting the whole memory, and merging one whose base was unmerged merged the base first;
    // at ten checkpoints a second the newest was never merged.
    [Fact]
    public async Task While_merges_are_behind_the_newest_checkpoint_is_merged_first_in_one_pass_over_its_chain()
    {
        await using var agent = await TestAgent.StartAsync(output, o => (o.FullEvery, o.Retention) = (20, 0));
        var keeper = agent.Services.GetRequiredService<CheckpointKeeper>();
        await using var db = await TrackingMemberAsync(agent, 2, pages: 64);
        await CheckpointAsync(agent, false, db);
        var ids = new List<string>();
        using (keeper.PauseMerges("web"))
        {
            for (var i = 0; i < 4; i++)
            {
                db.Touch(i, 10 + i, 20 + i);
                if (i == 2)
                {
                    db.Drop(30);
                }
                var result = await CheckpointAsync(agent, false, db);
                Assert.Equal("incremental", result.Kind);
                ids.Add(result.Id);
            }
        }
        await WaitUntilMergedAsync(agent, [.. ids]);

        // The first one may have been taken by the merge thread before the others were queued.
        var mergedAt = ids.Skip(1).Select(id => agent.Store.LoadManifest("web", id).Merged!.MergedUtc).ToList();
        Assert.True(mergedAt[2] < mergedAt[1] && mergedAt[1] < mergedAt[0],
            $"merged at {string.Join(", ", ids.Skip(1).Zip(mergedAt, (id, t) => $"{id} {t:HH:mm:ss.fffffff}"))}: the newest first");
        foreach (var id in ids)
        {
            var manifest = agent.Store.Verify("web", id);
            AssertSamePages(db.PagesAt(CheckpointId.Parse(id)), FullImagePages.Read(ImageFiles.Of(agent.Store.CheckpointDir("web", id), manifest.Members[0])));
        }
    }

    /// <summary>
    /// `hactl images verify` right after an incremental checkpoint, while its background merge
    /// replaces its images and deletes the ones it replaced: the verify holds the checkpoint as it
    /// was when it began, and every one verifies.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_verifies_while_its_background_merge_replaces_its_images()
    {
        // Every checkpoint is kept (retention 0): the test waits for each one's merge.
        await using var agent = await TestAgent.StartAsync(output, o => (o.FullEvery, o.Retention) = (20, 0));
        await using var db = await TrackingMemberAsync(agent, 2, pages: 4096);
        await CheckpointAsync(agent, false, db);
        var ids = new List<string>();
        for (var i = 0; i < 12; i++)
        {
            db.Touch(Enumerable.Range(i * 40, 40).ToArray());
            var result = await CheckpointAsync(agent, false, db);
            Assert.Equal("incremental", result.Kind);
            var verified = await agent.Api.VerifyImageAsync("web", result.Id);
            Assert.True(verified.Ok, $"checkpoint {result.Id} does not verify: {verified.Error}");
            ids.Add(result.Id);
        }
        await WaitUntilMergedAsync(agent, [.. ids]);
    }

    // Retention deletes the full checkpoint, and the oldest merged ones, once merges made them
    // unneeded. The chain is then counted from the oldest merged checkpoint left: before, the
    // chain "could not be followed back to a full checkpoint", and every checkpoint after such a
    // deletion was full.
    [Fact]
    public async Task Checkpoints_stay_incremental_after_retention_deleted_the_full_one_behind_merged_ones()
    {
        await using var agent = await TestAgent.StartAsync(output, o => (o.FullEvery, o.Retention) = (20, 2));
        await using var db = await TrackingMemberAsync(agent, 2, pages: 64);
        var first = await CheckpointAsync(agent, false, db);
        for (var i = 0; i < 6; i++)
        {
            db.Touch(i);
            var result = await CheckpointAsync(agent, false, db);
            Assert.True(result.Kind == "incremental", $"checkpoint {result.Id} is {result.Kind}: {result}");
            await WaitUntilMergedAsync(agent, result.Id);
        }
        Assert.DoesNotContain(first.Id, agent.Services.GetRequiredService<CheckpointStore>().List("web").Select(c => c.Id));
    }

    // Back-to-back checkpoints (an interval shorter than a checkpoint) would otherwise hold the
    // group's merges for good: they go on while the members' writers write, and wait again for
    // the commit, where the replicator pins the new checkpoint.
    [Fact]
    public async Task Merges_go_on_while_the_members_write_and_are_held_again_for_the_commit()
    {
        await using var agent = await TestAgent.StartAsync(output);
        var keeper = agent.Services.GetRequiredService<CheckpointKeeper>();
        bool? heldAtCommit = null;
        keeper.Committed += _ => heldAtCommit = keeper.AreMergesPaused("web");
        await using var db = await TrackingMemberAsync(agent, 2);
        await CheckpointAsync(agent, false, db);
        db.Touch(1);

        var call = agent.Api.CheckpointAsync("web");
        await db.FreezeAsync();
        Assert.True(keeper.AreMergesPaused("web"));
        await db.WriteAsync();
        Assert.True(keeper.AreMergesPaused("web"));
        await db.ResumeAsync(writtenLater: true);
        // The agent lets them go once it has the RESUMED answer; until WRITTEN, nothing holds them.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (keeper.AreMergesPaused("web") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
        Assert.False(keeper.AreMergesPaused("web"), "merges still held while the member's writer writes");
        heldAtCommit = null;
        await db.SendWrittenAsync();
        var result = (await call)[^1].Result;

        Assert.True(heldAtCommit, "merges were not held when the checkpoint was committed");
        Assert.False(keeper.AreMergesPaused("web"));
        await WaitUntilMergedAsync(agent, result.Id);
    }

    [Fact]
    public async Task A_half_done_merge_is_finished_or_cleaned_up_when_the_agent_starts_again()
    {
        var root = TestAgent.NewRoot();
        try
        {
            SortedDictionary<ulong, byte[]> expected;
            await using (var agent = await TestAgent.StartAsync(output, NoBackgroundMerges, root: root))
            {
                await using var db = await TrackingMemberAsync(agent, 2);
                await CheckpointAsync(agent, false, db);
                db.Touch(1);
                await CheckpointAsync(agent, false, db);
                db.Touch(2);
                db.Drop(5);
                await CheckpointAsync(agent, false, db);
                expected = db.PagesAt(3);

                // Checkpoint 2: killed after its manifest was replaced, before the incremental files were deleted.
                await agent.Services.GetRequiredService<CheckpointKeeper>().MergeForRestoreAsync("web", "000002", CancellationToken.None);
                var dir2 = agent.Store.CheckpointDir("web", "000002");
                File.WriteAllText(Path.Combine(dir2, "2.meta"), "the increment, not deleted yet");
                File.WriteAllText(Path.Combine(dir2, "2.pages"), "");

                // Checkpoint 3: killed before its manifest was replaced: a merged image half written
                // and a manifest.json.tmp; its manifest still names the chain.
                var dir3 = agent.Store.CheckpointDir("web", "000003");
                File.WriteAllText(Path.Combine(dir3, "2.merged.meta"), "partial");
                File.WriteAllText(Path.Combine(dir3, "2.merged.pages"), "partial");
                File.WriteAllText(Path.Combine(dir3, "manifest.json.tmp"), "{ \"format\"");
                Assert.Equal("incremental", agent.Store.LoadManifest("web", "000003").Kind);
            }
            foreach (var socket in Directory.EnumerateFiles(root, "*.sock", SearchOption.AllDirectories))
            {
                File.Delete(socket);
            }

            await using var again = await TestAgent.StartAsync(output, root: root);

            Assert.Equal(["2.merged.meta", "2.merged.pages", "manifest.json"], FileNames(again, "000002"));
            await WaitUntilMergedAsync(again, "000003");
            Assert.Equal(["2.merged.meta", "2.merged.pages", "manifest.json"], FileNames(again, "000003"));
            var manifest = again.Store.Verify("web", "000003");
            AssertSamePages(expected, FullImagePages.Read(ImageFiles.Of(again.Store.CheckpointDir("web", "000003"), manifest.Members[0])));
            again.Store.Verify("web", "000002");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task A_restore_of_an_unmerged_chain_reads_it_as_it_is()
    {
        var native = FakeNative.Create();
        try
        {
            await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges, nativeDir: native.Dir, interceptorPath: native.Interceptor);
            var db = await TrackingMemberAsync(agent, 2, pages: 32);
            await CheckpointAsync(agent, false, db);
            db.Touch(0, 5);
            await CheckpointAsync(agent, false, db);
            db.Drop(5);
            db.Touch(3);
            var third = await CheckpointAsync(agent, false, db);
            Assert.Equal(["full", "incremental", "incremental"], (await agent.Api.ListImagesAsync("web")).Checkpoints.Select(c => c.Kind));

            var restore = agent.Api.RestoreAsync("web", third.Id, force: true);
            // The stopped member's connection closes; the restored process says HELLO restore.
            Assert.True(await db.IsClosedByAgentAsync());
            await db.DisposeAsync();
            await using var restored = await TestMember.JoinAsync(agent, "web", "app2", 2, origin: "restore");
            await restored.ResumeAsync();
            var reply = await restore;

            Assert.Equal(third.Id, reply.Id);
            // us-init was given the chain as it is, newest image first, and nothing was merged; and where the
            // group's output log was when the checkpoint was taken.
            Assert.Contains($"--restore {agent.Store.CheckpointDir("web", third.Id)} --plan ", File.ReadAllText(native.ArgsFile));
            var outputLog = Path.Combine(agent.Store.GroupDir("web"), "output.log");
            Assert.Equal(outputLog, agent.Store.LoadManifest("web", third.Id).OutputLog);
            Assert.Equal(
                $"understudy-restore-plan 1\noutput-was {outputLog}\nprocess 2 3\nimage 000003 2 2.meta 2.pages\nimage 000002 2 2.meta 2.pages\nimage 000001 2 2.meta 2.pages\n",
                File.ReadAllText(native.PlanFile));
            Assert.Equal("incremental", agent.Store.Verify("web", third.Id).Kind);
            Assert.Null(agent.Store.LoadManifest("web", "000002").Merged);
            // The plan is gone once us-init read it.
            Assert.False(File.Exists(Path.Combine(agent.Store.GroupDir("web"), "restore.plan")));

            // The restored processes descend from the restored checkpoint.
            restored.Tracking = true;
            var call = agent.Api.CheckpointAsync("web");
            await restored.TakePartAsync();
            await call;
            Assert.Equal($"WRITE 000004 incremental {CheckpointId.Parse(third.Id)}", WithoutDirectory(restored.WriteLines[^1]));
        }
        finally
        {
            Directory.Delete(native.Dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_restore_whose_base_is_gone_is_refused_with_the_missing_base_named()
    {
        await using var agent = await TestAgent.StartAsync(output, NoBackgroundMerges);
        await using var db = await TrackingMemberAsync(agent, 2);
        var first = await CheckpointAsync(agent, false, db);
        db.Touch(1);
        var second = await CheckpointAsync(agent, false, db);
        Directory.Delete(agent.Store.CheckpointDir("web", first.Id), recursive: true);

        var error = await Assert.ThrowsAsync<RpcException>(() => agent.Api.RestoreAsync("web", second.Id, force: true));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Equal(
            "restore of group web refused: checkpoint web/000002 cannot be used: its incremental image(s) of vpid 2 apply to checkpoint 000001, which does not exist any more; restore an older checkpoint (hactl images list web)",
            error.Status.Detail);
        Assert.False((await agent.Api.VerifyImageAsync("web", second.Id)).Ok);
        Assert.False(db.HasUnreadData); // the running group was not touched
    }

    /// <summary>A WRITE line without its directory and options; every WRITE asks for copy-on-write capture.</summary>
    private static string WithoutDirectory(string writeLine)
    {
        var tokens = writeLine.Split(' ');
        Assert.Equal("cow", tokens[5]);
        return string.Join(' ', tokens.Take(5).Where((_, i) => i != 2));
    }

    /// <summary>Until each checkpoint is merged and holds only the files its manifest names (the incremental ones are removed just after the manifest is replaced).</summary>
    private static async Task WaitUntilMergedAsync(TestAgent agent, params string[] ids) =>
        await Eventually.TrueAsync(
            () => ids.All(id =>
            {
                var manifest = agent.Store.LoadManifest("web", id);
                var named = manifest.Members.SelectMany(m => (string[])[m.Meta, m.Pages]).Append(CheckpointManifest.FileName);
                return manifest.Merged is not null && FileNames(agent, id).SequenceEqual(named.Order());
            }),
            $"checkpoints {string.Join(", ", ids)} are merged");

    private static string[] FileNames(TestAgent agent, string id) =>
        [.. Directory.EnumerateFiles(agent.Store.CheckpointDir("web", id)).Select(f => Path.GetFileName(f)).Order()];

    /// <summary>An incremental image of <paramref name="vpid"/> with no page written.</summary>
    private static void WriteIncrementalImage(string dir, int vpid, long seq, long baseSeq)
    {
        using var writer = new ProcessImageWriter(Path.Combine(dir, $"{vpid}.meta"), Path.Combine(dir, $"{vpid}.pages"));
        List<PageRun> runs = [];
        var image = new ProcessImage(
            new MetaHeader(ImageKind.Incremental, (uint)vpid, (ulong)seq, (uint)baseSeq),
            new ProcRecord((uint)vpid, 1, (uint)vpid, 1, 0, 0, 0, 18, 0, 0, MmLayout.FromArray(new ulong[ImageLayout.MmFieldCount]), "/x", "/", "x", []),
            [new VmaRecord(SimulatedProcess.MappingStart, SimulatedProcess.MappingStart + 8 * 4096UL, VmaProt.Read | VmaProt.Write, VmaFlags.None, VmaKind.Anon, 0, 0, 0, 0, runs, "")],
            [new ThreadRecord((uint)vpid, false, 0, "x")],
            [],
            [],
            new MiscRecord([default, default, default], new ulong[ImageLayout.RlimitCount], 0));
        writer.Finish(image);
    }

    private static void AssertSamePages(SortedDictionary<ulong, byte[]> expected, SortedDictionary<ulong, byte[]> actual)
    {
        Assert.Equal(expected.Keys.Select(a => $"0x{a:x}"), actual.Keys.Select(a => $"0x{a:x}"));
        foreach (var (address, page) in expected)
        {
            Assert.True(page.AsSpan().SequenceEqual(actual[address]), $"page 0x{address:x} differs");
        }
    }

    /// <summary>
    /// Stand-ins for the native parts, enough for a restore driven by test members: us-init
    /// records its arguments and a copy of the restore plan, says READY and RESTORED 1, and exits on QUIT.
    /// </summary>
    private sealed record FakeNative(string Dir)
    {
        public string Interceptor => Path.Combine(Dir, "libunderstudy.so");
        public string ArgsFile => Path.Combine(Dir, "args");
        public string PlanFile => Path.Combine(Dir, "plan");

        public static FakeNative Create()
        {
            var native = new FakeNative(Path.Combine("/tmp", "usfake-" + Guid.NewGuid().ToString("N")[..10]));
            Directory.CreateDirectory(native.Dir);
            var init = Path.Combine(native.Dir, "us-init");
            File.WriteAllText(init, $$"""
                #!/bin/bash
                echo "$*" > '{{native.ArgsFile}}'
                args=("$@"); for i in "${!args[@]}"; do [ "${args[$i]}" = --plan ] && cp "${args[$((i + 1))]}" '{{native.PlanFile}}'; done
                echo "READY $$"
                case " $* " in *" --restore "*) echo "RESTORED 1" ;; esac
                while read -r line; do [ "$line" = QUIT ] && exit 0; done
                """);
            File.SetUnixFileMode(init, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.WriteAllText(native.Interceptor, "");
            File.WriteAllText(Path.Combine(native.Dir, "us-restorer"), "");
            return native;
        }
    }
}
