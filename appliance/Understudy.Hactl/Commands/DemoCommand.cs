using System.CommandLine;
using Understudy.GuestAgent.CommandLine;
using Understudy.Hactl.Cli;
using Understudy.Hactl.Demo;
using Understudy.Hactl.Native;
using Understudy.Hactl.Output;

namespace Understudy.Hactl.Commands;

/// <summary><c>hactl demo [--keep]</c></summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var keep = new Option<bool>("--keep") { Description = "Keep the demo's state directory (images and logs) afterwards" };
        var nativeDir = CommonOptions.NativeDir();
        var json = CommonOptions.Json();

        var demo = new Command("demo",
            "Show Understudy end to end: an agent of its own checkpoints a counter, which is killed, restored and counts on")
        {
            keep, nativeDir, json,
        };

        demo.SetHandler(async (parse, ct) =>
        {
            var native = NativePaths.NativeDir(parse.GetValue(nativeDir));
            var options = new DemoOptions(parse.GetValue(keep), parse.GetValue(json), native, NativeLayout.Interceptor(null, native));
            var report = await new DemoRunner(options).RunAsync(ct);
            if (options.Json)
            {
                Json.Write(report, HactlJsonContext.Default.DemoReport);
            }

            return ExitCodes.Ok;
        });
        return demo;
    }
}
