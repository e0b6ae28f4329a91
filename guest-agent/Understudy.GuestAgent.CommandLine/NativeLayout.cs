namespace Understudy.GuestAgent.CommandLine;

/// <summary>
/// Where the programs of an installation are. The build puts them in one directory,
/// <c>out/bin</c> (hactl, understudy-agent, us-init, us-restorer, us-probe), the interceptor in
/// <c>out/lib/libunderstudy.so</c> and the test workloads in <c>out/tests</c>.
/// </summary>
public static class NativeLayout
{
    public const string NativeDirVariable = "UNDERSTUDY_NATIVE_DIR";

    /// <summary>The file name of the agent's executable, in the native directory.</summary>
    public const string AgentProgram = "understudy-agent";

    /// <summary>The directory of the running executable (out/bin once published).</summary>
    public static string ExeDirectory => Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);

    /// <summary>--native-dir if given, else $UNDERSTUDY_NATIVE_DIR, else the running executable's directory.</summary>
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

    public static string Agent(string nativeDir) => Path.Combine(nativeDir, AgentProgram);
}
