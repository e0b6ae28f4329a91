namespace Understudy.Images;

/// <summary>The two files of one process image: its .meta and its .pages.</summary>
public sealed record ImageFiles(string Meta, string Pages)
{
    /// <summary>The files a manifest member names in its checkpoint directory.</summary>
    public static ImageFiles Of(string checkpointDir, ManifestMember member) =>
        new(Path.Combine(checkpointDir, member.Meta), Path.Combine(checkpointDir, member.Pages));
}
