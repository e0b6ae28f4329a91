namespace Understudy.Hactl.Output;

/// <summary>
/// A one-line live status on stderr, rewritten in place with \r. It shows only when stderr is a
/// terminal and the command does not print JSON; otherwise it does nothing.
/// </summary>
public sealed class ProgressLine : IDisposable
{
    private readonly bool enabled;
    private bool shown;

    public ProgressLine(bool json) => enabled = !json && !Console.IsErrorRedirected;

    public void Show(string text)
    {
        if (!enabled)
            return;
        Console.Error.Write("\r\x1b[K" + text);
        Console.Error.Flush();
        shown = true;
    }

    public void Clear()
    {
        if (!shown)
            return;
        Console.Error.Write("\r\x1b[K");
        Console.Error.Flush();
        shown = false;
    }

    public void Dispose() => Clear();
}
