namespace Understudy.Images;

/// <summary>struct us_sigact: one entry of the SIGACT record.</summary>
public sealed record SigactionEntry(uint Signo, ulong Handler, ulong Flags, ulong Restorer, ulong Mask);
