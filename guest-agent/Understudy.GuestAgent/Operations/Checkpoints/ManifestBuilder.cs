using Microsoft.Extensions.Logging;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Model.Members;
using Understudy.GuestAgent.Model.Protocol;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Checkpoints;

/// <summary>A member's answer to WRITE does not match what is in the staging directory.</summary>
internal sealed class CheckpointCommitException(string message) : Exception(message);

/// <summary>
/// Describes what the members wrote into the staging directory as the checkpoint's manifest:
/// identity from their HELLO; sizes, the .meta checksum and the image's kind and base from the
/// files themselves; the base's process from the answer when it is another (a fork's parent);
/// the group's output log on this node, which a restore elsewhere replaces with its own.
/// An image that does not fit what was asked (incremental when full was asked, or on another
/// base) fails the checkpoint.
/// </summary>
internal sealed class ManifestBuilder
{
    private readonly ILogger<ManifestBuilder> _logger;
    private readonly StatePaths _paths;

    public ManifestBuilder(ILogger<ManifestBuilder> logger, StatePaths paths)
    {
        _logger = logger;
        _paths = paths;
    }

    public CheckpointManifest Build(
        string group, long seq, CheckpointPlan plan, string stagingDir,
        IReadOnlyList<Member> members, IReadOnlyDictionary<Member, WrittenReply> written)
    {
        var entries = new List<ManifestMember>(members.Count);
        foreach (var member in members)
        {
            var meta = Path.Combine(stagingDir, $"{member.Vpid}.meta");
            var pages = Path.Combine(stagingDir, $"{member.Vpid}.pages");
            foreach (var file in (string[])[meta, pages])
            {
                if (!File.Exists(file))
                {
                    throw new CheckpointCommitException($"{member.Describe()} answered WRITTEN but {Path.GetFileName(file)} is missing");
                }
                // The manifest must never name data a crash could still lose. The member's writer
                // fdatasynced its files already: an fdatasync then costs nothing, where an fsync
                // would commit the files' new times to the journal, a disk flush each.
                DataSync(file);
            }

            written.TryGetValue(member, out var reply);
            ManifestMember entry;
            try
            {
                entry = ManifestMember.FromFiles(stagingDir, member.Vpid, member.Vppid, member.App, member.ExecCount, reply?.BaseVpid);
            }
            catch (ImageFormatException e)
            {
                throw new CheckpointCommitException($"{member.Describe()} wrote an image that cannot be used: {e.Message}");
            }
            if (entry.IsIncremental && (!plan.IsIncremental || entry.BaseSeq != plan.BaseSeq))
            {
                var asked = plan.IsIncremental ? $"an image on checkpoint {plan.BaseSeq} was asked for" : "a full image was asked for";
                throw new CheckpointCommitException($"{member.Describe()} wrote an incremental image on checkpoint {entry.BaseSeq} but {asked}");
            }
            if (reply is not null)
            {
                if (reply.MetaBytes != entry.MetaBytes || reply.PagesBytes != entry.PagesBytes)
                {
                    _logger.LogWarning(
                        "Member {Vpid} ({App}) of group {Group} reported {ReportedMeta}+{ReportedPages} bytes but wrote {MetaBytes}+{PagesBytes}; the manifest uses the files' sizes",
                        member.Vpid, member.App, group, reply.MetaBytes, reply.PagesBytes, entry.MetaBytes, entry.PagesBytes);
                }
                if ((reply.Kind ?? CheckpointManifest.FullKind) != entry.Kind)
                {
                    _logger.LogWarning(
                        "Member {Vpid} ({App}) of group {Group} reported a {ReportedKind} image but its header says {Kind}; the manifest uses the header",
                        member.Vpid, member.App, group, reply.Kind ?? "full (by not saying)", entry.Kind);
                }
            }
            entries.Add(entry);
        }
        return CheckpointManifest.Create(group, seq, DateTime.UtcNow, entries) with { OutputLog = _paths.OutputLog(group) };
    }

    private static void DataSync(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        Libc.DataSync(handle, path);
    }
}
