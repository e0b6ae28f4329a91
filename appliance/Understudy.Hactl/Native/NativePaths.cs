namespace Understudy.Hactl.Native;

/// <summary>
/// Where hactl finds the native parts. The build installs them next to hactl:
/// <c>out/bin</c> (hactl, us-init, us-restorer, us-probe), <c>out/lib/libunderstudy.so</c>
/// and <c>out/tests</c> (test workloads).
/// </summary>
public static class NativePaths
{
    public const string NativeDirVariable = "UNDERSTUDY_NATIVE_DIR";

    /// <summary>The directory of the hactl executable (out/bin once published).</summary>
    public static string ExeDirectory => Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);

    /// <summary>--native-dir if given, else $UNDERSTUDY_NATIVE_DIR, else hactl's own directory.</summary>
    public static string NativeDir(string? option)
    {
        if (!string.IsNullOrWhiteSpace(option))
        {
            return Path.GetFullPath(option);
        }

        var env = Environment.GetEnvironmentVariable(NativeDirVariable);
        return string.IsNullOrWhiteSpace(env) ? ExeDirectory : Path.GetFullPath(env);
    }

    /// <summary>--interceptor if given, else <c>NATIVE_DIR/../lib/libunderstudy.so</c>.</summary>
    public static string Interceptor(string? option, string nativeDir) =>
        string.IsNullOrWhiteSpace(option)
            ? Path.GetFullPath(Path.Combine(nativeDir, "..", "lib", "libunderstudy.so"))
            : Path.GetFullPath(option);

    public static string Probe(string nativeDir) => Path.Combine(nativeDir, "us-probe");

    /// <summary>The native counter workload used by <c>hactl demo</c>, if the build installed it.</summary>
    public static string CounterWorkload(string nativeDir) =>
        Path.GetFullPath(Path.Combine(nativeDir, "..", "tests", "wl_counter"));
}
