using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Understudy.IntegrationTests.Infrastructure;

/// <summary>The outcome of one out/bin/hactl run.</summary>
public sealed class HactlResult
{
    public required string CommandLine { get; init; }
    public required int ExitCode { get; init; }
    public required string Stdout { get; init; }
    public required string Stderr { get; init; }

    /// <summary>The non-empty lines hactl wrote on stderr.</summary>
    public string[] StderrLines =>
        Stderr.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToArray();

    /// <summary>stdout parsed as the one JSON document --json promises.</summary>
    public JsonElement Json
    {
        get
        {
            try
            {
                using var doc = JsonDocument.Parse(Stdout);
                return doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new Xunit.Sdk.XunitException($"stdout of `{CommandLine}` is not one JSON document ({e.Message}):\n{this}");
            }
        }
    }

    /// <summary>Asserts a zero exit code.</summary>
    public HactlResult Ok()
    {
        if (ExitCode != 0)
        {
            throw new Xunit.Sdk.XunitException($"`{CommandLine}` failed:\n{this}");
        }

        return this;
    }

    /// <summary>
    /// Asserts the error contract: a nonzero exit code and exactly one non-empty line
    /// on stderr (no stack trace, no usage text).
    /// </summary>
    public HactlResult FailsWithOneLine()
    {
        if (ExitCode == 0)
        {
            throw new Xunit.Sdk.XunitException($"`{CommandLine}` succeeded, expected an error:\n{this}");
        }

        if (StderrLines.Length != 1)
        {
            throw new Xunit.Sdk.XunitException(
                $"`{CommandLine}` must report its error in exactly one stderr line, got {StderrLines.Length}:\n{this}");
        }

        return this;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("  $ ").AppendLine(CommandLine);
        sb.Append("  exit ").AppendLine(ExitCode.ToString());
        sb.Append("  stdout: ").AppendLine(Clip(Stdout));
        sb.Append("  stderr: ").Append(Clip(Stderr));
        return sb.ToString();
    }

    private static string Clip(string s) => s.Length <= 4000 ? s.TrimEnd() : s[..4000] + " ...";
}

/// <summary>Runs out/bin/hactl against one agent.</summary>
public sealed class Hactl
{
    private readonly string? _agent;
    private readonly Action<string>? _log;

    /// <param name="agent">the --agent address (unix:PATH), or null to pass none</param>
    /// <param name="log">receives one line per command, for the test output</param>
    public Hactl(string? agent, Action<string>? log = null)
    {
        _agent = agent;
        _log = log;
    }

    public Hactl WithLog(Action<string>? log) => new(_agent, log);

    /// <summary>hactl ARGS --agent AGENT --json (options go before a "--").</summary>
    public Task<HactlResult> Run(params string[] args) => Run(args, json: true);

    public Task<HactlResult> Run(IReadOnlyList<string> args, bool json = true, string? agent = null,
        TimeSpan? timeout = null)
    {
        var full = new List<string>(args);
        int sep = full.IndexOf("--");
        var opts = new List<string>();
        var address = agent ?? _agent;
        if (address is not null)
        {
            opts.AddRange(new[] { "--agent", address });
        }

        if (json)
        {
            opts.Add("--json");
        }

        full.InsertRange(sep >= 0 ? sep : full.Count, opts);
        return RunRaw(Repo.Hactl, full, timeout ?? Timeouts.Command, _log);
    }

    /// <summary>Runs a program to completion; kills it (and its tree) on timeout.</summary>
    /// <param name="environment">variables set for the program, over the test's own</param>
    public static async Task<HactlResult> RunRaw(string program, IReadOnlyList<string> args, TimeSpan timeout,
        Action<string>? log = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("HACTL_AGENT");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }
        var commandLine = "hactl " + string.Join(' ', args.Select(Quote));

        using var p = new Process { StartInfo = psi };
        p.Start();
        ProcessSweeper.RegisterDotnetChild(p.Id);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await p.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                await p.WaitForExitAsync();
                var partial = new HactlResult
                {
                    CommandLine = commandLine, ExitCode = -1,
                    Stdout = await Drain(stdout), Stderr = await Drain(stderr),
                };
                log?.Invoke($"{commandLine} -> TIMED OUT after {timeout.TotalSeconds:0} s");
                throw new TimeoutException($"`{commandLine}` did not finish within {timeout.TotalSeconds:0} s:\n{partial}");
            }
        }
        var result = new HactlResult
        {
            CommandLine = commandLine,
            ExitCode = p.ExitCode,
            Stdout = await Drain(stdout),
            Stderr = await Drain(stderr),
        };
        log?.Invoke($"{commandLine} -> exit {result.ExitCode}" +
                    (result.ExitCode != 0 ? $"; stderr: {result.Stderr.Trim()}" : ""));
        return result;
    }

    /// <summary>
    /// Output of an exited process; bounded, in case it left a descendant holding the pipe.
    /// </summary>
    private static async Task<string> Drain(Task<string> read)
    {
        var done = await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(10)));
        return done == read ? await read : "(output still open: a child of hactl holds the pipe)";
    }

    private static string Quote(string a) =>
        a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./:=,@%+".Contains(c)) ? a : $"'{a}'";
}
