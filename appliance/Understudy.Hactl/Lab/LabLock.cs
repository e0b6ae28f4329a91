using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Lab;

/// <summary>One lab command at a time on a lab directory: an exclusive lock on DIR/lab.lock (flock).</summary>
public static class LabLock
{
    public static FileStream Take(LabLayout layout, string what)
    {
        try
        {
            return new FileStream(layout.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new HactlException(what, $"another hactl lab command is working on {layout.Dir}", "wait until it ends, then run this one again");
        }
    }
}
