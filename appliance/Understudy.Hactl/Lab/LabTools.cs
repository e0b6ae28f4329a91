using System.Diagnostics;
using System.Globalization;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Lab;

/// <summary>
/// The programs a lab runs: us-lab (native/src/lab/us_lab.c), which makes and enters the
/// namespaces, and iproute2's ip, run inside them. Never in the host's network namespace.
/// </summary>
public sealed class LabTools(string nativeDir, LabLayout layout)
{
    public const string UsLabProgram = "us-lab";
    public const string IpProgram = "ip";

    public string UsLab { get; } = Path.Combine(nativeDir, UsLabProgram);

    public string NativeDir { get; } = nativeDir;

    /// <summary>
    /// Creates a holder (<c>us-lab hold</c>): network, mount and pid namespaces for a node, or a
    /// network namespace only for the switch. Returns its process, which lives on after hactl.
    /// </summary>
    public async Task<LabProcess> HoldAsync(string dir, bool netOnly, string what, CancellationToken ct)
    {
        string[] args = netOnly ? ["hold", "--net-only", dir] : ["hold", dir];
        return Started(await RunAsync(UsLab, args, what, ct, firstLine: true), what);
    }

    /// <summary>Starts <paramref name="commandLine"/> detached inside the namespaces of <paramref name="holder"/> (<c>us-lab start</c>).</summary>
    public async Task<LabProcess> StartAsync(string dir, LabProcess holder, string log, IReadOnlyList<string> commandLine, string what, CancellationToken ct)
    {
        string[] args = ["start", dir, Pid(holder), log, "--", .. commandLine];
        return Started(await RunAsync(UsLab, args, what, ct), what);
    }

    /// <summary>The arguments of us-lab that run <paramref name="commandLine"/> in the foreground inside the namespaces of <paramref name="holder"/>.</summary>
    public IReadOnlyList<string> ExecArguments(string dir, LabProcess holder, IEnumerable<string> commandLine) =>
        ["exec", dir, Pid(holder), "--", .. commandLine];

    /// <summary><c>ip ARGS</c> inside the network namespace of <paramref name="holder"/>; returns its stdout.</summary>
    public async Task<string> IpAsync(string dir, LabProcess holder, string what, CancellationToken ct, params string[] args) =>
        await RunAsync(UsLab, ExecArguments(dir, holder, [IpProgram, .. args]), what, ct);

    private static string Pid(LabProcess p) => p.Pid.ToString(CultureInfo.InvariantCulture);

    private static LabProcess Started(string stdout, string what)
    {
        if (int.TryParse(stdout.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && LabProcesses.Find(pid) is { } process)
        {
            return process;
        }

        throw new HactlException(what, $"us-lab reported no running process (it printed '{stdout.Trim()}')", "run 'hactl lab down' and try again");
    }

    /// <summary>
    /// Runs a program to its end, or with <paramref name="firstLine"/> until it prints one line (us-lab hold stays as
    /// the holder's parent); a failure is a <see cref="HactlException"/> with its last stderr line.
    /// </summary>
    private async Task<string> RunAsync(string program, IEnumerable<string> args, string what, CancellationToken ct, bool firstLine = false)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = layout.Dir,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new HactlException(what, $"{program} could not be started ({ErrorLine.Clause(e.Message)})", "rebuild with ./build.sh");
        }

        process.StandardInput.Close();
        if (firstLine && await process.StandardOutput.ReadLineAsync(ct) is { } line)
        {
            return line;
        }

        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
        {
            var why = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
                      ?? $"exit code {process.ExitCode}";
            throw new HactlException(what, ErrorLine.Clause(why), "run 'hactl lab down' to remove what was made, and check 'hactl lab --help' for the privileges a lab needs");
        }

        return await stdout;
    }
}
