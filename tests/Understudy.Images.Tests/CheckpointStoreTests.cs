using System.Text.Json;

namespace Understudy.Images.Tests;

public sealed class CheckpointStoreTests : IDisposable
{
    private const UnixFileMode Dir0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode File0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly TempDir _temp = new();
    private readonly CheckpointStore _store;

    public CheckpointStoreTests() => _store = new CheckpointStore(Path.Combine(_temp.Path, "state"));

    public void Dispose() => _temp.Dispose();

    /// <summary>Stages images of the given vpids, as group members would, and commits them.</summary>
    private CheckpointInfo Checkpoint(string group, params uint[] vpids)
    {
        (string id, long seq, string dir) = _store.CreateStaging(group);
        var members = vpids.Select(vpid =>
        {
            TestImages.WriteRich(dir, vpid, (ulong)seq, seed: (int)vpid);
            return ManifestMember.FromFiles(dir, (int)vpid, 1, $"app{vpid}", 0);
        }).ToList();
        return _store.Commit(group, id, CheckpointManifest.Create(group, seq, "full", DateTime.UtcNow, members));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".hidden")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("sp ace")]
    [InlineData("tab\there")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123456789")]
    public void Invalid_group_names_are_refused_with_one_line(string group)
    {
        var e = Assert.Throws<ArgumentException>(() => _store.GroupDir(group));
        Assert.StartsWith("group name ", e.Message);
        Assert.DoesNotContain('\n', e.Message.Split(" (Parameter")[0]);
    }

    [Fact]
    public void Valid_group_names_map_to_their_directory()
    {
        Assert.Equal(Path.Combine(_store.StateDir, "groups", "Web-1.prod_x"), _store.GroupDir("Web-1.prod_x"));
        Assert.Equal(Path.Combine(_store.StateDir, "groups", "web", "checkpoints", "000004"), _store.CheckpointDir("web", "000004"));
        Assert.Throws<ArgumentException>(() => _store.CheckpointDir("web", "../../x"));
        Assert.Throws<ArgumentException>(() => _store.CheckpointDir("web", "4"));
    }

    [Fact]
    public void Staging_ids_increase_and_directories_are_0700()
    {
        var first = _store.CreateStaging("web");
        var second = _store.CreateStaging("web");
        Assert.Equal(("000001", 1L), (first.Id, first.Seq));
        Assert.Equal(("000002", 2L), (second.Id, second.Seq));
        Assert.Equal(Path.Combine(_store.GroupDir("web"), "staging", "000002"), second.Dir);

        foreach (string dir in new[] { _store.StateDir, Path.Combine(_store.StateDir, "groups"), _store.GroupDir("web"),
                     Path.GetDirectoryName(first.Dir)!, first.Dir, second.Dir })
        {
            Assert.Equal(Dir0700, File.GetUnixFileMode(dir));
        }

        Assert.Equal("000001", _store.CreateStaging("other").Id);
    }

    [Fact]
    public void Concurrent_staging_never_shares_an_id()
    {
        var ids = Enumerable.Range(0, 16).AsParallel().Select(_ => _store.CreateStaging("web").Id).ToList();
        Assert.Equal(16, ids.Distinct().Count());
        Assert.Equal(Enumerable.Range(1, 16).Select(i => CheckpointId.Format(i)), ids.Order());
    }

    [Fact]
    public void Commit_makes_a_checkpoint_visible_and_durable_files_private()
    {
        Assert.Empty(_store.List());
        CheckpointInfo info = Checkpoint("web", 2, 3);

        Assert.Equal(("web", "000001", 1L, "full", 2), (info.Group, info.Id, info.Seq, info.Kind, info.Members));
        Assert.Equal(_store.CheckpointDir("web", "000001"), info.Directory);
        Assert.False(Directory.Exists(Path.Combine(_store.GroupDir("web"), "staging", "000001")));
        Assert.Equal(Directory.EnumerateFiles(info.Directory).Where(f => !f.EndsWith("manifest.json")).Sum(f => new FileInfo(f).Length), info.Bytes);

        Assert.Equal(File0600, File.GetUnixFileMode(Path.Combine(info.Directory, "manifest.json")));
        Assert.All(Directory.EnumerateFiles(info.Directory), f => Assert.Equal(File0600, File.GetUnixFileMode(f)));
        Assert.Equal(Dir0700, File.GetUnixFileMode(info.Directory));
        Assert.Equal(Dir0700, File.GetUnixFileMode(Path.GetDirectoryName(info.Directory)!));

        Assert.Equal([info], _store.List());
        Assert.Equal([info], _store.List("web"));
        Assert.Empty(_store.List("other"));

        // The next id continues after the committed one.
        Assert.Equal("000002", _store.CreateStaging("web").Id);
    }

    [Fact]
    public void Commit_refuses_a_foreign_manifest_a_missing_staging_dir_and_a_second_commit()
    {
        (string id, long seq, string dir) = _store.CreateStaging("web");
        TestImages.WriteRich(dir, 2, (ulong)seq);
        ManifestMember member = ManifestMember.FromFiles(dir, 2, 1, "db", 0);

        Assert.Throws<ArgumentException>(() => _store.Commit("web", id, CheckpointManifest.Create("db", seq, "full", DateTime.UtcNow, [member])));
        Assert.Throws<ArgumentException>(() => _store.Commit("web", id, CheckpointManifest.Create("web", seq + 1, "full", DateTime.UtcNow, [member])));
        Assert.Throws<CheckpointNotFoundException>(() => _store.Commit("web", "000009", CheckpointManifest.Create("web", 9, "full", DateTime.UtcNow, [member])));

        _store.Commit("web", id, CheckpointManifest.Create("web", seq, "full", DateTime.UtcNow, [member]));
        var again = Assert.Throws<CheckpointNotFoundException>(() => _store.Commit("web", id, CheckpointManifest.Create("web", seq, "full", DateTime.UtcNow, [member])));
        Assert.Equal("no staging checkpoint 000001 in group web to commit; it was discarded or never created", again.Message);
    }

    [Fact]
    public void List_orders_by_group_then_seq()
    {
        Checkpoint("web", 2);
        Checkpoint("db", 2);
        Checkpoint("web", 2);
        Assert.Equal([("db", 1L), ("web", 1L), ("web", 2L)], _store.List().Select(c => (c.Group, c.Seq)));
    }

    [Fact]
    public void Verify_accepts_an_intact_checkpoint()
    {
        CheckpointInfo info = Checkpoint("web", 2, 3);
        CheckpointManifest m = _store.Verify("web", info.Id);
        Assert.Equal([2, 3], m.Members.Select(x => x.Vpid));
    }

    [Fact]
    public void Verify_names_a_corrupted_pages_byte()
    {
        CheckpointInfo info = Checkpoint("web", 2, 3);
        string pages = Path.Combine(info.Directory, "3.pages");
        byte[] bytes = File.ReadAllBytes(pages);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(pages, bytes);

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", info.Id));
        Assert.Matches(@"^image 3\.pages of checkpoint web/000001 is corrupt: page run at 0x[0-9a-f]+ \(\d+ pages at offset \d+\) checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\); restore an older checkpoint \(hactl images list web\)$", e.Message);
    }

    [Fact]
    public void A_restore_reads_again_a_pages_file_changed_in_place_since_it_was_verified()
    {
        CheckpointInfo info = Checkpoint("web", 2, 3);
        Thread.Sleep(CheckpointStore.ReusableAfter);
        _store.Verify("web", info.Id);

        // One bit flipped in place: same file, same size, and its modification time put back.
        string pages = Path.Combine(info.Directory, "3.pages");
        DateTime modified = File.GetLastWriteTimeUtc(pages);
        using (var file = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2;
            int b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0x01));
        }
        File.SetLastWriteTimeUtc(pages, modified);

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", info.Id, reusePageChecks: true));
        Assert.Contains("checksum mismatch", e.Message);
    }

    [Fact]
    public void Verify_names_a_truncated_meta()
    {
        CheckpointInfo info = Checkpoint("web", 2);
        string meta = Path.Combine(info.Directory, "2.meta");
        long length = new FileInfo(meta).Length;
        File.WriteAllBytes(meta, File.ReadAllBytes(meta)[..100]);

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", info.Id));
        Assert.Equal($"checkpoint web/000001 is corrupt: 2.meta is 100 bytes but the manifest says {length}; restore an older checkpoint (hactl images list web)", e.Message);
    }

    [Fact]
    public void Verify_names_a_meta_checksum_that_differs_from_the_manifest()
    {
        CheckpointInfo info = Checkpoint("web", 2);
        string manifestPath = Path.Combine(info.Directory, "manifest.json");
        CheckpointManifest m = CheckpointManifest.Load(manifestPath);
        File.WriteAllText(manifestPath, (m with { Members = [m.Members[0] with { MetaCrc32c = m.Members[0].MetaCrc32c ^ 1 }] }).ToJson());

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", info.Id));
        Assert.Matches(@"^checkpoint web/000001 is corrupt: 2\.meta checksum 0x[0-9a-f]{8} differs from the manifest's 0x[0-9a-f]{8}; restore an older checkpoint \(hactl images list web\)$", e.Message);
    }

    [Fact]
    public void Verify_names_an_image_of_another_process_or_checkpoint()
    {
        CheckpointInfo first = Checkpoint("web", 2);
        CheckpointInfo second = Checkpoint("web", 2);
        foreach (string file in new[] { "2.meta", "2.pages" })
        {
            File.Copy(Path.Combine(first.Directory, file), Path.Combine(second.Directory, file), overwrite: true);
        }

        string manifestPath = Path.Combine(second.Directory, "manifest.json");
        CheckpointManifest m = CheckpointManifest.Load(manifestPath);
        File.WriteAllText(manifestPath, (m with { Members = [ManifestMember.FromFiles(second.Directory, 2, 1, "app2", 0)] }).ToJson());

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", second.Id));
        Assert.Contains("2.meta belongs to checkpoint seq 1, not 2", e.Message);
    }

    [Fact]
    public void Verify_names_a_missing_member_file()
    {
        CheckpointInfo info = Checkpoint("web", 2, 3);
        File.Delete(Path.Combine(info.Directory, "3.pages"));
        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", info.Id));
        Assert.StartsWith("image 3.pages of checkpoint web/000001 is missing: ", e.Message);
        Assert.EndsWith("; restore an older checkpoint (hactl images list web)", e.Message);
    }

    [Fact]
    public void Unknown_checkpoints_and_groups_are_not_found()
    {
        Checkpoint("web", 2);
        var e = Assert.Throws<CheckpointNotFoundException>(() => _store.Verify("web", "000009"));
        Assert.Equal("no checkpoint 000009 in group web; see hactl images list web", e.Message);
        Assert.Equal(("web", "000009"), (e.Group, e.Id));
        Assert.Throws<CheckpointNotFoundException>(() => _store.Verify("nosuchgroup", "000001"));
        Assert.Throws<CheckpointNotFoundException>(() => _store.InspectJson("web", "000002"));

        // A staging checkpoint does not exist yet.
        string staged = _store.CreateStaging("web").Id;
        Assert.Throws<CheckpointNotFoundException>(() => _store.Verify("web", staged));
    }

    [Fact]
    public void Discard_removes_staging_directories()
    {
        var a = _store.CreateStaging("web");
        var b = _store.CreateStaging("web");
        File.WriteAllText(Path.Combine(a.Dir, "2.meta"), "partial");
        _store.DiscardStaging("web", a.Id);
        Assert.False(Directory.Exists(a.Dir));
        Assert.True(Directory.Exists(b.Dir));
        _store.DiscardStaging("web", a.Id); // already gone: nothing to do

        _store.CreateStaging("web");
        _store.DiscardAllStaging("web");
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_store.GroupDir("web"), "staging")));
        _store.DiscardAllStaging("never-used");
        Assert.Empty(_store.List());
    }

    [Fact]
    public void NewestId_is_the_highest_readable_committed_seq()
    {
        Assert.Null(_store.NewestId("web"));
        Checkpoint("web", 2);
        CheckpointInfo second = Checkpoint("web", 2);
        _store.CreateStaging("web"); // staging never counts
        Assert.Equal("000002", _store.NewestId("web"));

        // A committed checkpoint whose manifest is damaged is listed as corrupt and passed over.
        CheckpointInfo third = Checkpoint("web", 2);
        File.WriteAllText(Path.Combine(third.Directory, "manifest.json"), "{ \"format\": ");
        Assert.Equal(["full", "full", "corrupt"], _store.List("web").Select(c => c.Kind));
        Assert.Equal(second.Id, _store.NewestId("web"));
        Assert.Contains("manifest.json of checkpoint web/000004 is corrupt: invalid JSON",
            Assert.Throws<ImageFormatException>(() => _store.Verify("web", "000004")).Message);
    }

    [Fact]
    public void InspectJson_shows_members_with_decoded_images()
    {
        CheckpointInfo info = Checkpoint("web", 2, 5);
        using var doc = JsonDocument.Parse(_store.InspectJson("web", info.Id));
        JsonElement root = doc.RootElement;
        Assert.Equal(("understudy-checkpoint", "web", "000001", "full"),
            (root.GetProperty("format").GetString(), root.GetProperty("group").GetString(), root.GetProperty("id").GetString(), root.GetProperty("kind").GetString()));

        JsonElement member = root.GetProperty("members")[1];
        Assert.Equal(5, member.GetProperty("vpid").GetInt32());
        Assert.Equal("app5", member.GetProperty("app").GetString());

        JsonElement fds = member.GetProperty("fds");
        JsonElement log = fds.EnumerateArray().Single(f => f.GetProperty("fd").GetInt32() == 3);
        Assert.Equal(("file", "/var/log/app.log", 123_456_789UL), (log.GetProperty("kind").GetString(), log.GetProperty("path").GetString(), log.GetProperty("pos").GetUInt64()));
        Assert.Equal(["chr", "pipe", "fifo", "file", "dir", "unix_stream", "unix_stream", "unix_dgram", "eventfd", "timerfd", "epoll", "signalfd", "coordinator", "tcp", "udp", "memfd", "pty_master", "pty_slave", "tcp", "unix_seqpacket", "mqueue"],
            fds.EnumerateArray().Select(f => f.GetProperty("kind").GetString()));
        JsonElement timer = fds[9].GetProperty("aux");
        Assert.Equal(1_000_000_000UL, timer.GetProperty("intervalNs").GetUInt64());
        Assert.True(fds[2].GetProperty("aux").GetProperty("isReadEnd").GetBoolean());
        Assert.Equal(2, fds[10].GetProperty("epollTargets").GetArrayLength());

        JsonElement vmas = member.GetProperty("vmas");
        Assert.Equal(["file", "file", "heap", "anon", "shmem", "file", "stack", "vvar", "vvar_vclock", "vdso"],
            vmas.EnumerateArray().Select(v => v.GetProperty("kind").GetString()));
        Assert.Equal(("0x555555554000", "0x555555564000", "rw-p"),
            (vmas[2].GetProperty("start").GetString(), vmas[2].GetProperty("end").GetString(), vmas[2].GetProperty("prot").GetString()));
        Assert.Equal("rw-s", vmas[4].GetProperty("prot").GetString());
        Assert.Equal("r-xp", vmas[0].GetProperty("prot").GetString());

        Assert.Equal(3, member.GetProperty("threads").GetArrayLength());
        Assert.Equal(3, member.GetProperty("sigactionCount").GetInt32());
        Assert.Equal(15, member.GetProperty("pageTotals").GetProperty("pages").GetInt32());
        Assert.True(vmas[3].GetProperty("noReserve").GetBoolean());

        JsonElement timers = member.GetProperty("timers");
        Assert.Equal(["signal", "thread", "none"], timers.EnumerateArray().Select(t => t.GetProperty("notify").GetString()));
        Assert.Equal((2, 7, "0x7f0000001000"), (timers[1].GetProperty("id").GetInt32(), timers[1].GetProperty("tid").GetInt32(),
            timers[1].GetProperty("value").GetString()));
        JsonElement ipc = member.GetProperty("ipc");
        Assert.Equal(["shm", "sem", "msg", "mqueue"], ipc.EnumerateArray().Select(o => o.GetProperty("kind").GetString()));
        Assert.Equal((32768, "1640", 5000UL), (ipc[0].GetProperty("id").GetInt32(), ipc[0].GetProperty("mode").GetString(), ipc[0].GetProperty("size").GetUInt64()));
        Assert.Equal(3, ipc[1].GetProperty("semValues").GetArrayLength());
        Assert.Equal(2, ipc[2].GetProperty("messages").GetArrayLength());
        Assert.Equal("/jobs-\u00e9", ipc[3].GetProperty("name").GetString());
        Assert.Equal("DontFork, DontDump", member.GetProperty("memoryAdvice")[0].GetProperty("flags").GetString());
        Assert.Equal(5000, member.GetProperty("pageTotals").GetProperty("sharedMemoryBytes").GetInt32());
        // JSON cannot carry the escaped byte of a non-UTF-8 path; it shows as U+FFFD.
        Assert.Equal("/home/\ufffduser", member.GetProperty("proc").GetProperty("cwd").GetString());
    }
}
