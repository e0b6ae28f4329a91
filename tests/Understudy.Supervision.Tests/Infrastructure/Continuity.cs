using Xunit.Sdk;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>
/// Checks, from the group's output, that a counter went on from a checkpoint after a
/// recovery instead of starting over. After the checkpoint's stdout offset the "TAG N" values
/// are: the killed run's, from the checkpointed value + 1 up to where it died, and then the
/// restored run's, again from the checkpointed value + 1, one by one.
/// </summary>
public static class Continuity
{
    /// <returns>the values of the restored run</returns>
    public static List<long> AssertRestoredFrom(GroupLog log, string tag, long checkpointOffset, long checkpointed)
    {
        var values = log.Counts(tag, checkpointOffset);
        var expected = checkpointed + 1;
        if (values.Count == 0 || values[0] != expected)
        {
            throw new XunitException($"\"{tag}\": the first value after the checkpoint is {(values.Count == 0 ? "missing" : values[0])}, expected {expected}");
        }

        var restart = Enumerable.Range(1, values.Count - 1).FirstOrDefault(i => values[i] != values[i - 1] + 1);
        var restored = restart == 0 ? values : values.Skip(restart).ToList();
        if (restored[0] != expected)
        {
            var why = restored[0] == 1 ? "it started again from scratch" : "it is not the checkpointed value + 1";
            throw new XunitException($"\"{tag}\" went on with {restored[0]} after the recovery, but the checkpoint had printed {checkpointed}: {why}");
        }
        for (var i = 1; i < restored.Count; i++)
        {
            if (restored[i] != restored[i - 1] + 1)
            {
                throw new XunitException($"\"{tag}\" went from {restored[i - 1]} to {restored[i]} after the recovery");
            }
        }

        return restored;
    }

    /// <summary>The last "TAG N" printed before byte <paramref name="offset"/>.</summary>
    public static long ValueAt(GroupLog log, string tag, long offset) =>
        log.LastCount(tag, offset) ?? throw new XunitException($"no \"{tag} N\" line before offset {offset}");
}
