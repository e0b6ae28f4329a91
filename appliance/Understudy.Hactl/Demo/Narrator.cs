namespace Understudy.Hactl.Demo;

/// <summary>Tells the demo's story on stdout; silent with --json (which prints one document at the end).</summary>
public sealed class Narrator(bool silent, int totalSteps)
{
    private int _step;

    public int CurrentStep => _step;

    public string CurrentTitle { get; private set; } = "";

    public void Step(string title, string explanation)
    {
        _step++;
        CurrentTitle = title;
        if (silent)
        {
            return;
        }

        if (_step > 1)
        {
            Console.WriteLine();
        }

        Console.WriteLine($"[{_step}/{totalSteps}] {title}");
        Console.WriteLine($"      {explanation}");
    }

    public void Detail(string line)
    {
        if (!silent)
        {
            Console.WriteLine($"      {line}");
        }
    }

    public void Output(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            Detail($"| {line}");
        }
    }

    public void Done(string line)
    {
        if (silent)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine(line);
    }
}
