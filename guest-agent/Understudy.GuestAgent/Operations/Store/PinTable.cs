namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// Which checkpoints may not change now, by group and seq, and why: held by a pin (no merge
/// rewrites them, retention does not delete them) or read by a merge in progress (retention does
/// not delete them). Counted, since pins overlap. Not thread-safe: the keeper's lock guards it.
/// </summary>
internal sealed class PinTable
{
    private readonly Dictionary<(string Group, long Seq), (int Pins, int Merges)> _counts = [];

    public void Pin(string group, IEnumerable<long> seqs) => Change(group, seqs, pins: 1, merges: 0);

    public void Unpin(string group, IEnumerable<long> seqs) => Change(group, seqs, pins: -1, merges: 0);

    public void MarkMerging(string group, IEnumerable<long> seqs) => Change(group, seqs, pins: 0, merges: 1);

    public void UnmarkMerging(string group, IEnumerable<long> seqs) => Change(group, seqs, pins: 0, merges: -1);

    /// <summary>Held by a pin: a merge may not rewrite it.</summary>
    public bool IsPinned(string group, long seq) => _counts.TryGetValue((group, seq), out var count) && count.Pins > 0;

    /// <summary>Pinned or read by a merge: retention may not delete it.</summary>
    public bool IsHeld(string group, long seq) => _counts.ContainsKey((group, seq));

    private void Change(string group, IEnumerable<long> seqs, int pins, int merges)
    {
        foreach (var seq in seqs)
        {
            var (p, m) = _counts.GetValueOrDefault((group, seq));
            var count = (Pins: p + pins, Merges: m + merges);
            if (count.Pins < 0 || count.Merges < 0)
            {
                throw new InvalidOperationException($"checkpoint {seq} of group {group} released more often than held");
            }
            if (count is (0, 0))
            {
                _counts.Remove((group, seq));
            }
            else
            {
                _counts[(group, seq)] = count;
            }
        }
    }
}
