using System.Text.Json;

namespace Understudy.Images.Tests;

/// <summary>Manifests and the store with incremental members, merges and missing bases.</summary>
public sealed class IncrementalManifestTests : IDisposable
{
    private const ulong A = 0x7f00_0000_0000, P = 0x1000;

    private readonly TempDir _temp = new();
    private readonly CheckpointStore _store;

    public IncrementalManifestTests() => _store = new CheckpointStore(Path.Combine(_temp.Path, "state"));

    public void Dispose() => _temp.Dispose();

    private static ManifestMember Member(int vpid, string kind = "full", long baseSeq = 0) =>
        new(vpid, 1, "app", 0, $"{vpid}.meta", 4096, 1, $"{vpid}.pages", 8192, kind, baseSeq);

    /// <summary>Commits a checkpoint of group web whose processes wrote full images, or incremental ones on <paramref name="baseSeq"/>.</summary>
    private CheckpointInfo Commit(long baseSeq, params uint[] vpids)
    {
        (string id, long seq, string dir) = _store.CreateStaging("web");
        var members = vpids.Select(vpid =>
        {
            MemoryImages.Write(dir, vpid.ToString(), vpid, (ulong)seq, (uint)baseSeq, [new VmaSpec(A, A + 4 * P, [RunSpec.Data(A, 1, (int)seq)])]);
            return ManifestMember.FromFiles(dir, (int)vpid, 1, $"app{vpid}", 0);
        }).ToList();
        return _store.Commit("web", id, CheckpointManifest.Create("web", seq, DateTime.UtcNow, members));
    }

    [Fact]
    public void A_manifest_without_member_kinds_is_all_full()
    {
        const string old = """
            { "format": "understudy-checkpoint", "version": 1, "group": "web", "id": "000003", "seq": 3, "kind": "full",
              "createdUtc": "2026-11-25T19:00:00Z", "bytes": 1,
              "members": [ { "vpid": 2, "vppid": 1, "app": "db", "execCount": 0, "meta": "2.meta", "metaBytes": 4096,
                             "metaCrc32c": 1, "pages": "2.pages", "pagesBytes": 0 } ] }
            """;
        CheckpointManifest m = CheckpointManifest.FromJson(old);
        Assert.Equal(("full", 0L, false), (m.Members[0].Kind, m.Members[0].BaseSeq, m.Members[0].IsIncremental));
        Assert.Null(m.Merged);
        Assert.DoesNotContain("\"merged\"", m.ToJson());
    }

    [Theory]
    [InlineData("partial", 0, "full", "has kind \"partial\"")]
    [InlineData("full", 2, "full", "is full but has baseSeq 2")]
    [InlineData("incremental", 0, "incremental", "is incremental on baseSeq 0")]
    [InlineData("incremental", 9, "incremental", "is incremental on baseSeq 9; it must name an earlier checkpoint")]
    [InlineData("incremental", 2, "full", "kind is \"full\" but a member is incremental")]
    [InlineData("full", 0, "incremental", "kind is \"incremental\" but no member is incremental")]
    public void Member_kinds_and_bases_must_be_consistent(string memberKind, long baseSeq, string kind, string reason)
    {
        var m = CheckpointManifest.Create("web", 9, kind, DateTime.UtcNow, [Member(2), Member(3, memberKind, baseSeq)]);
        var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson(m.ToJson()));
        TestImages.AssertOneLine(e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void The_kind_follows_the_members()
    {
        Assert.Equal("full", CheckpointManifest.Create("web", 4, DateTime.UtcNow, [Member(2), Member(3)]).Kind);
        CheckpointManifest inc = CheckpointManifest.Create("web", 4, DateTime.UtcNow, [Member(2), Member(3, "incremental", 3)]);
        Assert.Equal(("incremental", 3L, true), (inc.Kind, inc.BaseSeq, inc.HasIncrementalMembers));
    }

    [Fact]
    public void A_merged_manifest_records_what_the_checkpoint_was()
    {
        CheckpointManifest inc = CheckpointManifest.Create("web", 4, DateTime.UtcNow, [Member(2), Member(3, "incremental", 3)]);
        var mergedAt = new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc);
        ManifestMember replacement = Member(3) with { Meta = "3.merged.meta", Pages = "3.merged.pages", PagesBytes = 1 << 20 };

        CheckpointManifest merged = inc.AsMerged([replacement], mergedAt);

        Assert.Equal("full", merged.Kind);
        Assert.Equal(new MergeRecord(3, inc.Bytes, mergedAt), merged.Merged);
        Assert.Equal(3L, merged.BaseSeq);
        Assert.Equal([Member(2), replacement], merged.Members);
        Assert.Equal(4096 + 8192 + 4096 + (1 << 20), merged.Bytes);

        using var doc = JsonDocument.Parse(merged.ToJson());
        JsonElement record = doc.RootElement.GetProperty("merged");
        Assert.Equal((3, inc.Bytes, "2026-11-26T08:00:00Z"), (record.GetProperty("baseSeq").GetInt32(), record.GetProperty("bytes").GetInt64(), record.GetProperty("mergedUtc").GetString()));
        Assert.Equal(merged with { Members = [] }, CheckpointManifest.FromJson(merged.ToJson()) with { Members = [] });

        var stillIncremental = merged with { Kind = "incremental", Members = inc.Members };
        Assert.Contains("marked merged but still has incremental members", Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson(stillIncremental.ToJson())).Message);
    }

    [Fact]
    public void FromFiles_takes_kind_and_base_from_the_image()
    {
        Commit(0, 2);
        CheckpointInfo second = Commit(1, 2);
        ManifestMember member = Assert.Single(_store.LoadManifest("web", second.Id).Members);
        Assert.Equal(("incremental", 1L), (member.Kind, member.BaseSeq));
        Assert.Equal(("incremental", 1L, false), (second.Kind, second.BaseSeq, second.Merged));
    }

    [Fact]
    public void Verify_accepts_an_incremental_checkpoint_whose_base_holds_its_processes()
    {
        Commit(0, 2, 3);
        CheckpointInfo inc = Commit(1, 2, 3);
        Assert.Equal("incremental", _store.Verify("web", inc.Id).Kind);
    }

    // images verify said ok for an incremental checkpoint whose base was corrupt.
    [Fact]
    public void Verify_reads_the_whole_base_chain_and_names_the_corrupt_base()
    {
        CheckpointInfo first = Commit(0, 2);
        Commit(1, 2);
        CheckpointInfo third = Commit(2, 2);
        var pages = Path.Combine(first.Directory, "2.pages");
        var bytes = File.ReadAllBytes(pages);
        bytes[10] ^= 0xff;
        File.WriteAllBytes(pages, bytes);

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", third.Id));

        Assert.StartsWith("checkpoint web/000003 cannot be used: its base checkpoint 000002 does not verify " +
                          "(checkpoint web/000002 cannot be used: its base checkpoint 000001 does not verify (", e.Message);
        Assert.Contains("2.pages", e.Message);
        Assert.EndsWith("; restore an older checkpoint (hactl images list web)", e.Message);
        TestImages.AssertOneLine(e.Message);
    }

    [Fact]
    public void Verify_names_a_missing_base_checkpoint()
    {
        CheckpointInfo first = Commit(0, 2);
        CheckpointInfo inc = Commit(1, 2);
        Directory.Delete(first.Directory, recursive: true);

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", inc.Id));
        Assert.Equal("checkpoint web/000002 cannot be used: its incremental image(s) of vpid 2 apply to checkpoint 000001, which does not exist any more; restore an older checkpoint (hactl images list web)", e.Message);
    }

    [Fact]
    public void Verify_names_a_base_without_the_process()
    {
        Commit(0, 2);
        (string id, long seq, string dir) = _store.CreateStaging("web");
        MemoryImages.Write(dir, "7", 7, (ulong)seq, 1, [new VmaSpec(A, A + P, [])]);
        _store.Commit("web", id, CheckpointManifest.Create("web", seq, DateTime.UtcNow, [ManifestMember.FromFiles(dir, 7, 1, "x", 0)]));

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", id));
        TestImages.AssertOneLine(e.Message);
        Assert.Contains("its incremental image of vpid 7 applies to checkpoint 000001, which has no process 7", e.Message);
    }

    [Fact]
    public void Verify_names_an_image_whose_kind_differs_from_the_manifest()
    {
        Commit(0, 2);
        CheckpointInfo inc = Commit(1, 2);
        string path = Path.Combine(inc.Directory, "manifest.json");
        CheckpointManifest m = CheckpointManifest.Load(path);
        File.WriteAllText(path, (m with { Kind = "full", Members = [m.Members[0] with { Kind = "full", BaseSeq = 0 }] }).ToJson());

        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", inc.Id));
        Assert.Contains("2.meta is incremental on checkpoint 1 but the manifest lists it as full", e.Message);
    }

    [Fact]
    public void ReplaceManifest_installs_a_new_manifest_and_leftovers_are_removed()
    {
        Commit(0, 2);
        CheckpointInfo inc = Commit(1, 2);
        CheckpointManifest before = _store.LoadManifest("web", inc.Id);
        (string meta, string pages) = CheckpointStore.MergedFileNames(2);
        Assert.Equal(("2.merged.meta", "2.merged.pages"), (meta, pages));
        ImageMerger.Merge(ImageFiles.Of(_store.CheckpointDir("web", "000001"), _store.LoadManifest("web", "000001").Members[0]),
            ImageFiles.Of(inc.Directory, before.Members[0]), new ImageFiles(Path.Combine(inc.Directory, meta), Path.Combine(inc.Directory, pages)));
        File.WriteAllText(Path.Combine(inc.Directory, "manifest.json.tmp"), "{ half");
        File.WriteAllText(Path.Combine(inc.Directory, "notes.txt"), "an operator's file");

        // A crash before the manifest was replaced: the merged files are what is left over.
        Assert.Equal(["2.merged.meta", "2.merged.pages", "manifest.json.tmp"], _store.RemoveUnreferencedFiles("web", inc.Id));
        ImageMerger.Merge(ImageFiles.Of(_store.CheckpointDir("web", "000001"), _store.LoadManifest("web", "000001").Members[0]),
            ImageFiles.Of(inc.Directory, before.Members[0]), new ImageFiles(Path.Combine(inc.Directory, meta), Path.Combine(inc.Directory, pages)));

        CheckpointManifest after = before.AsMerged([ManifestMember.FromFiles(inc.Directory, meta, pages, 2, 1, "app2", 0)], DateTime.UtcNow);
        _store.ReplaceManifest("web", inc.Id, after);

        Assert.Equal(["2.meta", "2.pages"], _store.RemoveUnreferencedFiles("web", inc.Id));
        Assert.Equal(["2.merged.meta", "2.merged.pages", "manifest.json", "notes.txt"], Directory.EnumerateFiles(inc.Directory).Select(Path.GetFileName).Order());
        CheckpointManifest verified = _store.Verify("web", inc.Id);
        Assert.Equal(("full", true), (verified.Kind, verified.Merged is not null));
        CheckpointInfo listed = _store.List("web")[1];
        Assert.Equal(("full", "merged", 1L, true), (listed.Kind, listed.DisplayKind, listed.BaseSeq, listed.Merged));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(inc.Directory, "manifest.json")));
    }

    [Fact]
    public void ReplaceManifest_refuses_a_manifest_naming_missing_files_or_another_checkpoint()
    {
        CheckpointInfo first = Commit(0, 2);
        CheckpointManifest m = _store.LoadManifest("web", first.Id);
        Assert.Throws<ArgumentException>(() => _store.ReplaceManifest("web", first.Id, m with { Members = [m.Members[0] with { Meta = "9.meta" }] }));
        Assert.Throws<ArgumentException>(() => _store.ReplaceManifest("web", "000002", m));
        Assert.Throws<ArgumentException>(() => _store.ReplaceManifest("web", first.Id, m with { Kind = "incremental" }));
        Assert.Equal(m.ToJson(), _store.LoadManifest("web", first.Id).ToJson());
    }
}
