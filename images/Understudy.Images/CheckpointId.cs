using System.Globalization;

namespace Understudy.Images;

/// <summary>Checkpoint ids are the sequence number zero-padded to six digits: 000001, 000002, ...</summary>
public static class CheckpointId
{
    public static string Format(long seq)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seq);
        return seq.ToString("D6", CultureInfo.InvariantCulture);
    }

    /// <summary>Accepts only the canonical spelling, so every seq has exactly one directory name.</summary>
    public static bool TryParse(string? id, out long seq)
    {
        seq = 0;
        return id is { Length: >= 6 and <= 19 }
            && id.All(char.IsAsciiDigit)
            && long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out seq)
            && seq > 0
            && Format(seq) == id;
    }

    /// <exception cref="ArgumentException">Not a canonical id.</exception>
    public static long Parse(string id) => TryParse(id, out long seq)
        ? seq
        : throw new ArgumentException($"checkpoint id \"{id}\" is not valid: ids are the zero-padded sequence number, e.g. 000003", nameof(id));
}
