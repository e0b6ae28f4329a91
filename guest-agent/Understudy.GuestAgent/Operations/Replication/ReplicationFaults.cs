using System.Globalization;
using Understudy.GuestAgent.Operations.Store;

namespace Understudy.GuestAgent.Operations.Replication;

/// <summary>
/// Fault injection for tests, from the agent's environment (the variable of <see cref="MergeFaults"/>):
/// <c>UNDERSTUDY_AGENT_FAULT=drop-push:BYTES</c> makes a receiving agent cut the connection it
/// receives a push on (a real TCP connection reset) once it has received BYTES bytes of image data,
/// once; <c>drop-takeover-reply</c> makes a migration's target cut the connection of a takeover once
/// the group runs here, so that the source never reads the answer (once). Unset in production.
/// </summary>
internal sealed class ReplicationFaults
{
    private const string DropPush = "drop-push:";
    private const string DropTakeOverReply = "drop-takeover-reply";
    private readonly long _dropAfter;
    private int _takeOverReplies;
    private long _received;
    private int _dropped;

    public ReplicationFaults()
        : this(Environment.GetEnvironmentVariable(MergeFaults.Variable))
    {
    }

    public ReplicationFaults(string? setting)
    {
        foreach (var fault in (setting ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (fault.StartsWith(DropPush, StringComparison.Ordinal)
                && long.TryParse(fault[DropPush.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var bytes))
            {
                _dropAfter = bytes;
            }
            else if (fault == DropTakeOverReply)
            {
                _takeOverReplies = 1;
            }
        }
    }

    /// <summary>True once, when a takeover's answer should be lost.</summary>
    public bool DropTakeOverReplyNow() => Interlocked.Exchange(ref _takeOverReplies, 0) == 1;

    public void Received(long bytes) => Interlocked.Add(ref _received, bytes);

    /// <summary>True once, when the connection should be cut now.</summary>
    public bool DropNow() =>
        _dropAfter > 0 && Interlocked.Read(ref _received) >= _dropAfter && Interlocked.Exchange(ref _dropped, 1) == 0;
}
