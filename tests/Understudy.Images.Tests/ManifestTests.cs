using System.Text.Json;

namespace Understudy.Images.Tests;

public class ManifestTests
{
    // The example of docs/protocol.md, verbatim.
    private const string ProtocolExample = """
        {
          "format": "understudy-checkpoint",
          "version": 1,
          "group": "web",
          "id": "000003",
          "seq": 3,
          "kind": "full",
          "createdUtc": "2026-11-25T19:00:00Z",
          "bytes": 268500000,
          "members": [
            { "vpid": 2, "vppid": 1, "app": "db", "execCount": 0,
              "meta": "2.meta", "metaBytes": 4096, "metaCrc32c": 305419896,
              "pages": "2.pages", "pagesBytes": 268435456, "kind": "full", "baseSeq": 0 }
          ],
          "outputLog": "/var/lib/understudy/groups/web/output.log"
        }
        """;

    [Fact]
    public void Loads_the_protocol_example()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("manifest.json"), ProtocolExample);
        CheckpointManifest m = CheckpointManifest.Load(dir.File("manifest.json"));

        Assert.Equal(("understudy-checkpoint", 1, "web", "000003", 3L, "full", 268500000L), (m.Format, m.Version, m.Group, m.Id, m.Seq, m.Kind, m.Bytes));
        Assert.Equal(new DateTime(2026, 11, 25, 19, 0, 0, DateTimeKind.Utc), m.CreatedUtc);
        Assert.Equal(DateTimeKind.Utc, m.CreatedUtc.Kind);
        Assert.Equal(new ManifestMember(2, 1, "db", 0, "2.meta", 4096, 305419896, "2.pages", 268435456), Assert.Single(m.Members));
        Assert.Equal("/var/lib/understudy/groups/web/output.log", m.OutputLog);
    }

    [Fact]
    public void A_manifest_written_before_outputLog_reads_without_it_and_stays_without_it()
    {
        string old = ProtocolExample.Replace(",\n  \"outputLog\": \"/var/lib/understudy/groups/web/output.log\"", "", StringComparison.Ordinal);
        Assert.DoesNotContain("outputLog", old);
        CheckpointManifest m = CheckpointManifest.FromJson(old);
        Assert.Null(m.OutputLog);
        Assert.DoesNotContain("outputLog", m.ToJson());
    }

    [Fact]
    public void Json_round_trips_with_the_protocol_property_names()
    {
        CheckpointManifest m = CheckpointManifest.FromJson(ProtocolExample);
        string json = m.ToJson();

        using var doc = JsonDocument.Parse(json);
        Assert.Equal(["format", "version", "group", "id", "seq", "kind", "createdUtc", "bytes", "members", "outputLog"],
            doc.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["vpid", "vppid", "app", "execCount", "meta", "metaBytes", "metaCrc32c", "pages", "pagesBytes", "kind", "baseSeq"],
            doc.RootElement.GetProperty("members")[0].EnumerateObject().Select(p => p.Name));
        Assert.Equal("2026-11-25T19:00:00Z", doc.RootElement.GetProperty("createdUtc").GetString());

        CheckpointManifest back = CheckpointManifest.FromJson(json);
        Assert.Equal(m with { Members = [] }, back with { Members = [] });
        Assert.Equal(m.Members, back.Members);
    }

    [Fact]
    public void Create_fills_id_and_bytes()
    {
        var member = new ManifestMember(2, 1, "db", 0, "2.meta", 100, 1, "2.pages", 8192);
        CheckpointManifest m = CheckpointManifest.Create("web", 12, "incremental", new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), [member]);
        Assert.Equal(("000012", 8292L, "understudy-checkpoint", 1), (m.Id, m.Bytes, m.Format, m.Version));
    }

    [Theory]
    [InlineData("\"understudy-checkpoint\"", "\"something-else\"", "format is \"something-else\"")]
    [InlineData("\"id\": \"000003\"", "\"id\": \"000004\"", "is not seq 3 zero-padded")]
    [InlineData("\"id\": \"000003\"", "\"id\": \"3\"", "is not seq 3 zero-padded")]
    [InlineData("\"kind\": \"full\"", "\"kind\": \"partial\"", "kind is \"partial\"")]
    [InlineData("\"group\": \"web\"", "\"group\": \"../etc\"", "group name \"../etc\" starts with '.'")]
    [InlineData("\"group\": \"web\"", "\"group\": \"a/b\"", "has characters other than")]
    [InlineData("\"meta\": \"2.meta\"", "\"meta\": \"../../2.meta\"", "names files outside the checkpoint directory")]
    [InlineData("\"pages\": \"2.pages\"", "\"pages\": \"..\"", "names files outside the checkpoint directory")]
    [InlineData("\"vpid\": 2", "\"vpid\": 0", "negative or zero pid")]
    [InlineData("\"metaBytes\": 4096", "\"metaBytes\": 10", "impossible sizes")]
    [InlineData("\"seq\": 3,", "", "missing required properties")]
    [InlineData("\"group\": \"web\"", "\"group\": null", "invalid JSON")]
    [InlineData("\"seq\": 3", "\"seq\": \"3\"", "invalid JSON at line 6")]
    [InlineData("\"members\": [", "\"members\": [ null, ", "member 0 is null")]
    [InlineData("\"version\": 1,", "\"version\": 1, \"version\": 1,", "invalid JSON")]
    [InlineData("\"/var/lib/understudy/groups/web/output.log\"", "\"output.log\"", "outputLog \"output.log\" is not an absolute path")]
    public void Invalid_manifests_are_refused_with_the_reason(string find, string replace, string reason)
    {
        string json = ProtocolExample.Replace(find, replace);
        Assert.NotEqual(ProtocolExample, json);
        var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson(json));
        TestImages.AssertOneLine(e.Message);
        Assert.StartsWith("manifest is corrupt: ", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Another_version_is_unsupported_rather_than_corrupt()
    {
        var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson(ProtocolExample.Replace("\"version\": 1", "\"version\": 2")));
        Assert.Equal("manifest cannot be read: manifest version 2 is not supported (this build reads version 1); use another image or take a new checkpoint", e.Message);
    }

    [Fact]
    public void Duplicate_vpids_and_empty_member_lists_are_refused()
    {
        CheckpointManifest m = CheckpointManifest.FromJson(ProtocolExample);
        Assert.Contains("repeats vpid 2", Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson((m with { Members = [m.Members[0], m.Members[0]] }).ToJson())).Message);
        Assert.Contains("lists no members", Assert.Throws<ImageFormatException>(() => CheckpointManifest.FromJson((m with { Members = [] }).ToJson())).Message);
    }

    [Fact]
    public void Every_truncation_of_the_file_is_refused_with_one_line()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "groups", "web", "checkpoints", "000003", "manifest.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        byte[] json = System.Text.Encoding.UTF8.GetBytes(ProtocolExample);
        for (int length = 0; length < json.Length; length++)
        {
            File.WriteAllBytes(path, json[..length]);
            var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.Load(path));
            TestImages.AssertOneLine(e.Message);
            Assert.StartsWith("manifest.json of checkpoint web/000003 is corrupt: ", e.Message);
            Assert.EndsWith("; restore an older checkpoint (hactl images list web)", e.Message);
        }
    }

    [Fact]
    public void Random_damage_is_refused_or_accepted_but_never_escapes()
    {
        byte[] json = System.Text.Encoding.UTF8.GetBytes(ProtocolExample);
        var random = new Random(99);
        for (int i = 0; i < 3000; i++)
        {
            byte[] mutant = (byte[])json.Clone();
            for (int n = random.Next(1, 4); n > 0; n--)
            {
                mutant[random.Next(mutant.Length)] = (byte)random.Next(256);
            }

            try
            {
                CheckpointManifest.FromJson(System.Text.Encoding.UTF8.GetString(mutant));
            }
            catch (ImageFormatException e)
            {
                TestImages.AssertOneLine(e.Message);
            }
        }
    }

    [Fact]
    public void A_missing_file_is_an_image_format_error()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ImageFormatException>(() => CheckpointManifest.Load(dir.File("manifest.json")));
        Assert.Contains("is missing", e.Message);
    }
}
