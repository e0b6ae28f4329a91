using Understudy.GuestAgent.Foundation.Interop;
using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// What a copy of a checkpoint is a copy of, so that a broken push goes on only from bytes of the
/// same files: a checkpoint id alone does not say it. An aborted checkpoint's id is taken again by
/// the next one, whose images differ, and a merge rewrites a checkpoint's images under its id. The
/// origin is when the checkpoint's directory was created (the staging directory
/// the commit renames: the same while it is written and once committed), and when it was merged.
/// </summary>
internal static class ReplicaOrigin
{
    /// <summary>The origin of the checkpoint in <paramref name="dir"/>; null where the file system cannot tell.</summary>
    public static string? Of(string dir, CheckpointManifest? manifest)
    {
        if (Libc.BirthTime(dir) is not { } born)
        {
            return null;
        }
        return manifest?.Merged is { } merged ? $"{born}+merged@{merged.MergedUtc.Ticks}" : born;
    }
}
