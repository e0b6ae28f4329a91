using System.Text.Json;
using static Understudy.Images.Tests.MemoryImages;

namespace Understudy.Images.Tests;

/// <summary>
/// A process forked since the base checkpoint: its first incremental image applies to its
/// parent's image there (ManifestMember.BaseVpid), in the manifest, the store and the merge.
/// </summary>
public sealed class ForkLineageTests : IDisposable
{
    private const ulong A = 0x7f00_0000_0000, P = 0x1000;
    private const uint Parent = 2, Child = 5;

    private readonly TempDir _temp = new();
    private readonly CheckpointStore _store;

    public ForkLineageTests() => _store = new CheckpointStore(Path.Combine(_temp.Path, "state"));

    public void Dispose() => _temp.Dispose();

    private static ManifestMember Member(int vpid, string kind = "full", long baseSeq = 0, int? baseVpid = null) =>
        new(vpid, 1, "app", 0, $"{vpid}.meta", 4096, 1, $"{vpid}.pages", 8192, kind, baseSeq, baseVpid);

    [Fact]
    public void BaseVpid_round_trips_in_JSON_and_is_absent_when_null()
    {
        CheckpointManifest m = CheckpointManifest.Create("web", 4, DateTime.UtcNow,
            [Member(2, "incremental", 3), Member(5, "incremental", 3, baseVpid: 2)]);

        string json = m.ToJson();
        using var doc = JsonDocument.Parse(json);
        JsonElement members = doc.RootElement.GetProperty("members");
        Assert.False(members[0].TryGetProperty("baseVpid", out _));
        Assert.Equal(["vpid", "vppid", "app", "execCount", "meta", "metaBytes", "metaCrc32c", "pages", "pagesBytes", "kind", "baseSeq", "baseVpid"],
            members[1].EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, members[1].GetProperty("baseVpid").GetInt32());
        Assert.DoesNotContain("baseImageVpid", json, StringComparison.OrdinalIgnoreCase);

        CheckpointManifest back = CheckpointManifest.FromJson(json);
        Assert.Equal(m.Members, back.Members);
        Assert.Equal((null, 2, 2), (back.Members[0].BaseVpid, back.Members[0].BaseImageVpid, back.Members[1].BaseVpid));
        Assert.Equal(2, back.Members[1].BaseImageVpid);
        Assert.Equal(json, back.ToJson());

        // A manifest written before forks were tracked has no baseVpid anywhere: each member's own.
        CheckpointManifest old = CheckpointManifest.FromJson(json.Replace(",\n      \"baseVpid\": 2", ""));
        Assert.Equal(5, old.Members[1].BaseImageVpid);
    }

    [Theory]
    [InlineData("full", 0, 2, "member 1 (vpid 5) is full but has baseVpid 2; only an incremental member names a base image")]
    [InlineData("incremental", 3, 0, "member 1 (vpid 5) has baseVpid 0, expected a pid of 1 or more")]
    [InlineData("incremental", 3, -4, "member 1 (vpid 5) has baseVpid -4, expected a pid of 1 or more")]
    public void BaseVpid_is_only_for_incremental_members_and_is_a_pid(string kind, long baseSeq, int baseVpid, string reason)
    {
        var m = CheckpointManifest.Create("web", 4, DateTime.UtcNow, [Member(2, "incremental", 3), Member(5, kind, baseSeq, baseVpid)]);
        var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson(m.ToJson()));
        TestImages.AssertOneLine(e.Message);
        Assert.Contains(reason, e.Message);
    }

    /// <summary>Checkpoint 1: the parent alone, full. Checkpoint 2: the parent and its child, both incremental on checkpoint 1.</summary>
    private (CheckpointInfo Full, CheckpointInfo Inc) CommitFork(int? childBaseVpid = (int)Parent)
    {
        (string id1, long seq1, string dir1) = _store.CreateStaging("web");
        Write(dir1, $"{Parent}", Parent, (ulong)seq1, 0, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A, 8, 1)])], compress: true, pageData: CompressiblePage);
        CheckpointInfo full = _store.Commit("web", id1, CheckpointManifest.Create("web", seq1, DateTime.UtcNow,
            [ManifestMember.FromFiles(dir1, (int)Parent, 1, "app", 0)]));

        (string id2, long seq2, string dir2) = _store.CreateStaging("web");
        Write(dir2, $"{Parent}", Parent, (ulong)seq2, (uint)seq1, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A + P, 1, 2)])]);
        // The child shares the parent's mappings as of the fork and has written two pages since.
        Write(dir2, $"{Child}", Child, (ulong)seq2, (uint)seq1, [new VmaSpec(A, A + 8 * P, [RunSpec.Data(A + 4 * P, 2, 3), RunSpec.HoleAt(A + 7 * P, 1)])]);
        CheckpointInfo inc = _store.Commit("web", id2, CheckpointManifest.Create("web", seq2, DateTime.UtcNow,
        [
            ManifestMember.FromFiles(dir2, (int)Parent, 1, "app", 0),
            ManifestMember.FromFiles(dir2, (int)Child, (int)Parent, "app", 0, baseVpid: childBaseVpid),
        ]));
        return (full, inc);
    }

    [Fact]
    public void FromFiles_records_the_base_vpid_of_an_incremental_image_only()
    {
        (_, CheckpointInfo inc) = CommitFork();
        CheckpointManifest m = _store.LoadManifest("web", inc.Id);
        Assert.Equal([(2, (int?)null, 2), (5, 2, 2)], m.Members.Select(x => (x.Vpid, x.BaseVpid, x.BaseImageVpid)));

        // The member's own vpid is the default, written as nothing; a full image has no base.
        Assert.Null(ManifestMember.FromFiles(inc.Directory, (int)Child, 2, "app", 0, baseVpid: (int)Child).BaseVpid);
        Assert.Null(ManifestMember.FromFiles(_store.CheckpointDir("web", "000001"), (int)Parent, 1, "app", 0, baseVpid: 9).BaseVpid);
        Assert.Throws<ArgumentOutOfRangeException>(() => ManifestMember.FromFiles(inc.Directory, (int)Child, 2, "app", 0, baseVpid: 0));
    }

    [Fact]
    public void Verify_accepts_a_child_whose_base_is_its_parents_image()
    {
        (_, CheckpointInfo inc) = CommitFork();
        Assert.Equal(2, _store.Verify("web", inc.Id).Members.Count);
    }

    [Theory]
    [InlineData(null, "its incremental image of vpid 5 applies to checkpoint 000001, which has no process 5")]
    [InlineData(9, "its incremental image of vpid 5 applies to the image of vpid 9 in checkpoint 000001, which has no process 9")]
    public void Verify_names_a_missing_base_vpid(int? baseVpid, string reason)
    {
        (_, CheckpointInfo inc) = CommitFork(baseVpid);
        var e = Assert.Throws<ImageFormatException>(() => _store.Verify("web", inc.Id));
        TestImages.AssertOneLine(e.Message);
        Assert.Equal($"checkpoint web/000002 cannot be used: {reason}; restore an older checkpoint (hactl images list web)", e.Message);
    }

    [Fact]
    public void The_childs_increment_merges_onto_the_parents_image_and_keeps_its_own_vpid()
    {
        (CheckpointInfo full, CheckpointInfo inc) = CommitFork();
        ImageFiles parentBase = ImageFiles.Of(full.Directory, _store.LoadManifest("web", full.Id).Members[0]);
        ManifestMember child = _store.LoadManifest("web", inc.Id).Members[1];
        ImageFiles childInc = ImageFiles.Of(inc.Directory, child);
        (string meta, string pages) = CheckpointStore.MergedFileNames((int)Child);
        var output = new ImageFiles(Path.Combine(inc.Directory, meta), Path.Combine(inc.Directory, pages));

        MergeResult result = ImageMerger.Merge(parentBase, childInc, output, baseVpid: (uint)child.BaseImageVpid);

        Assert.Equal((ImageKind.Full, Child, Child, 2ul, 0u),
            (result.Image.Header.Kind, result.Image.Header.Vpid, result.Image.Proc.Vpid, result.Image.Header.CheckpointSeq, result.Image.Header.BaseSeq));
        // The parent's pages as of checkpoint 1, but the child's own two, and not the one it dropped.
        AssertSamePages(Apply(ReadPages(parentBase), childInc), ReadPages(output));
        Assert.Equal([A, A + P, A + 2 * P, A + 3 * P, A + 4 * P, A + 5 * P, A + 6 * P], ReadPages(output).Keys);
        Assert.True(ReadPages(output)[A + 4 * P].AsSpan().SequenceEqual(Page(A + 4 * P, 3)));
        // The parent's base was compressed, so the child's merged image is too.
        Assert.True(result.Image.CompressedRunCount > 0);

        // With the parent merged as usual, the checkpoint is full; the merged child names no base.
        (string parentMeta, string parentPages) = CheckpointStore.MergedFileNames((int)Parent);
        ImageMerger.Merge(parentBase, ImageFiles.Of(inc.Directory, _store.LoadManifest("web", inc.Id).Members[0]),
            new ImageFiles(Path.Combine(inc.Directory, parentMeta), Path.Combine(inc.Directory, parentPages)));
        CheckpointManifest after = _store.LoadManifest("web", inc.Id).AsMerged(
        [
            ManifestMember.FromFiles(inc.Directory, parentMeta, parentPages, (int)Parent, 1, "app", 0),
            ManifestMember.FromFiles(inc.Directory, meta, pages, (int)Child, (int)Parent, "app", 0),
        ], DateTime.UtcNow);
        Assert.Equal(("full", null, 5), (after.Members[1].Kind, after.Members[1].BaseVpid, after.Members[1].BaseImageVpid));
        _store.ReplaceManifest("web", inc.Id, after);
        Assert.DoesNotContain("baseVpid", File.ReadAllText(Path.Combine(inc.Directory, "manifest.json")));
        _store.Verify("web", inc.Id);
    }

    [Fact]
    public void A_merge_onto_an_image_of_another_vpid_is_refused()
    {
        (CheckpointInfo full, CheckpointInfo inc) = CommitFork();
        ImageFiles parentBase = ImageFiles.Of(full.Directory, _store.LoadManifest("web", full.Id).Members[0]);
        ImageFiles childInc = ImageFiles.Of(inc.Directory, _store.LoadManifest("web", inc.Id).Members[1]);
        var output = new ImageFiles(Path.Combine(_temp.Path, "m.meta"), Path.Combine(_temp.Path, "m.pages"));

        // Without the lineage the child's increment must be on an image of its own vpid.
        var own = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(parentBase, childInc, output));
        Assert.Contains("5.meta of checkpoint web/000002 cannot be merged: it is of vpid 5 but the base image is of vpid 2", own.Message);
        var other = Assert.Throws<ImageFormatException>(() => ImageMerger.Merge(parentBase, childInc, output, baseVpid: 7));
        TestImages.AssertOneLine(other.Message);
        Assert.Contains("cannot be merged: it (vpid 5) applies to the image of vpid 7 but the base image is of vpid 2", other.Message);
        Assert.False(File.Exists(output.Meta) || File.Exists(output.Pages));
    }
}
