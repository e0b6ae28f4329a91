using Understudy.GuestAgent.CommandLine;

namespace Understudy.Hactl.Native;

/// <summary>
/// Where hactl finds the programs it runs: next to itself in <c>out/bin</c> (understudy-agent,
/// us-probe, ...), or in --native-dir or $UNDERSTUDY_NATIVE_DIR (<see cref="NativeLayout"/>).
/// </summary>
public static class NativePaths
{
    /// <summary>--native-dir if given, else $UNDERSTUDY_NATIVE_DIR, else hactl's own directory.</summary>
    public static string NativeDir(string? option) => NativeLayout.NativeDir(option);

    public static string Probe(string nativeDir) => Path.Combine(nativeDir, "us-probe");

    /// <summary>The native counter workload used by <c>hactl demo</c>, if the build installed it.</summary>
    public static string CounterWorkload(string nativeDir) =>
        Path.GetFullPath(Path.Combine(nativeDir, "..", "tests", "wl_counter"));
}
