using System.Diagnostics;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Native;

/// <summary>
/// Runs the native <c>us-probe</c>, which prints one line per kernel feature:
/// <c>name&lt;TAB&gt;yes|no&lt;TAB&gt;detail</c>.
/// </summary>
public static class Probe
{
    public const string UffdWpAsync = "uffd-wp-async";
    public const string PagemapScan = "pagemap-scan";
    public const string Mprotect = "mprotect";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task<DoctorResult> RunAsync(string nativeDir, CancellationToken ct)
    {
        var path = NativePaths.Probe(nativeDir);
        const string what = "cannot check this node's kernel features";
        if (!File.Exists(path))
        {
            throw new HactlException(what, $"{path} does not exist", "build the native parts with ./build.sh, or point --native-dir or $UNDERSTUDY_NATIVE_DIR at them");
        }

        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new HactlException(what, $"{path} could not be started ({ErrorLine.Clause(e.Message)})", "rebuild it with ./build.sh");
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(Timeout);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                process.Kill(entireProcessTree: true);
                throw new HactlException(what, $"us-probe did not finish within {Timeout.TotalSeconds:0} s", "run it by hand to see where it hangs");
            }

            var features = Parse(await stdout);
            if (features.Count == 0)
            {
                var why = process.ExitCode != 0
                    ? $"us-probe exited with code {process.ExitCode}: {ErrorLine.Clause(FirstLine(await stderr))}"
                    : "us-probe printed no features";
                throw new HactlException(what, why, "run it by hand to see why");
            }
            return new DoctorResult(features, ChooseTracker(features));
        }
    }

    /// <summary>Parses us-probe's lines; lines that are not name, yes|no, detail are ignored.</summary>
    public static IReadOnlyList<Feature> Parse(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('\t', 3))
            .Where(f => f.Length >= 2 && f[1] is "yes" or "no")
            .Select(f => new Feature(f[0].Trim(), f[1] == "yes", f.Length > 2 ? f[2].Trim() : ""))
            .ToList();

    /// <summary>
    /// uffd-wp-async when both userfaultfd async write-protect and PAGEMAP_SCAN work; else the
    /// mprotect fallback, which is always possible unless the probe says otherwise.
    /// </summary>
    public static string ChooseTracker(IReadOnlyList<Feature> features)
    {
        bool Has(string name) => features.Any(f => f.Name == name && f.Available);
        if (Has(UffdWpAsync) && Has(PagemapScan))
        {
            return "uffd-wp-async";
        }

        return features.Any(f => f.Name == Mprotect && !f.Available) ? "none" : "mprotect";
    }

    private static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "no message";
}
