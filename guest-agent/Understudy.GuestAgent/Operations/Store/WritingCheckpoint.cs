using Understudy.Images;

namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// A checkpoint whose image files the members are writing now (<see cref="CheckpointKeeper.Writing"/>):
/// a replicator may send them to a standby as they grow, before the commit. <see cref="Files"/> are in
/// <see cref="Directory"/>, the staging directory, until the commit moves them: open them at once.
/// </summary>
/// <param name="BaseSeq">what its incremental images apply to (0: full images only)</param>
/// <param name="Files">the image files, by member: .meta then .pages</param>
/// <param name="Finished">its manifest once committed; null once aborted</param>
internal sealed record WritingCheckpoint(
    string Group, string Id, long BaseSeq, string Directory, IReadOnlyList<string> Files, Task<CheckpointManifest?> Finished);
