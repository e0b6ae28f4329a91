namespace Understudy.Images;

/// <summary>struct us_rec_thread. Comm is at most 16 bytes once encoded; the file pads it with zeros.</summary>
public sealed record ThreadRecord(uint Tid, bool IsCheckpointThread, ulong FsBase, string Comm);
