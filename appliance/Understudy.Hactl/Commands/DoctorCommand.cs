using System.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Native;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl doctor</c>: which kernel features this node has, and so which write tracker.</summary>
public static class DoctorCommand
{
    public static Command Create()
    {
        var nativeDir = CommonOptions.NativeDir();
        var json = CommonOptions.Json();

        var doctor = new Command("doctor", "Check this node's kernel features and report the write tracker it can use")
        {
            nativeDir, json,
        };

        doctor.SetHandler(async (parse, ct) =>
        {
            var result = await Probe.RunAsync(NativePaths.NativeDir(parse.GetValue(nativeDir)), ct);
            if (parse.GetValue(json))
            {
                Json.Write(result, HactlJsonContext.Default.DoctorResult);
                return ExitCodes.Ok;
            }

            var table = new Table("FEATURE", "STATUS", "DETAIL");
            foreach (var f in result.Features)
            {
                table.Add(f.Name, f.Available ? "ok" : "missing", f.Detail.Length == 0 ? "" : f.Detail);
            }

            table.WriteTo(Console.Out);
            Console.WriteLine();
            Console.WriteLine($"tracker: {result.Tracker} ({ExplainTracker(result.Tracker)})");
            return ExitCodes.Ok;
        });
        return doctor;
    }

    private static string ExplainTracker(string tracker) => tracker switch
    {
        "uffd-wp-async" => "the kernel marks written pages itself; incremental checkpoints are cheap",
        "mprotect" => "fallback: write-protection plus a SIGSEGV handler; incremental checkpoints work, with about 10 us per first write",
        _ => "no write tracker; every checkpoint is full",
    };
}
