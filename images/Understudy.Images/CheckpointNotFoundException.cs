namespace Understudy.Images;

/// <summary>The group or the checkpoint asked for does not exist. The message is one line.</summary>
public sealed class CheckpointNotFoundException : Exception
{
    public CheckpointNotFoundException(string group, string id, string message)
        : base(message)
    {
        Group = group;
        Id = id;
    }

    public string Group { get; }

    public string Id { get; }
}
