namespace Understudy.Hactl.Output;

/// <summary>
/// A one-line live status on stderr, rewritten in place with \r. It shows only when stderr is a
/// terminal and the command does not print JSON; otherwise it does nothing.
/// </summary>
public sealed class ProgressLine : IDisposable
{
    private readonly bool _enabled;
    private bool _shown;

    public ProgressLine(bool json) => _enabled = !json && !Console.IsErrorRedirected;

    public void Show(string text)
    {
        if (!_enabled)
        {
            return;
        }

        Console.Error.Write("\r\x1b[K" + text);
        Console.Error.Flush();
        _shown = true;
    }

    public void Clear()
    {
        if (!_shown)
        {
            return;
        }

        Console.Error.Write("\r\x1b[K");
        Console.Error.Flush();
        _shown = false;
    }

    public void Dispose() => Clear();
}
