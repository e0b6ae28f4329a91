using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;

namespace Understudy.GuestAgent.Operations.Launch;

/// <summary>
/// Refuses, before it starts, a program the interceptor cannot enter: a statically linked one
/// (no dynamic loader, so LD_PRELOAD is never read), directly or as a script's interpreter. It
/// would run unprotected, and a retry would start a second copy.
/// </summary>
internal static class StaticProgramCheck
{
    /// <summary>Scripts whose interpreter is a script, as the kernel allows.</summary>
    private const int MaxInterpreterDepth = 4;

    /// <exception cref="AgentException">the program that would run is statically linked.</exception>
    public static void Require(LaunchSpec spec)
    {
        var program = Resolve(spec.Argv[0], spec.Cwd, spec.Env.TryGetValue("PATH", out var path) ? path : Environment.GetEnvironmentVariable("PATH"));
        for (int depth = 0; program is not null && depth <= MaxInterpreterDepth; depth++)
        {
            var exe = Executable.Inspect(program);
            if (exe.Kind == ExecutableKind.Static)
            {
                var what = program == spec.Argv[0] || depth > 0 ? program : $"{spec.Argv[0]} ({program})";
                throw AgentException.FailedPrecondition(
                    $"launch of {spec.App} refused: {what} is statically linked, so the interceptor cannot enter it and it would run unprotected; launch a dynamically linked build of it");
            }
            program = exe.Kind == ExecutableKind.Script ? exe.Interpreter : null;
        }
    }

    /// <summary>The file execvp would run, or null if there is none (exec then reports it).</summary>
    private static string? Resolve(string command, string cwd, string? path)
    {
        if (command.Contains('/'))
        {
            var file = Path.IsPathFullyQualified(command) ? command : Path.Combine(cwd, command);
            return File.Exists(file) ? file : null;
        }
        return (path ?? "/usr/local/bin:/usr/bin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(Path.IsPathFullyQualified(dir) ? dir : Path.Combine(cwd, dir), command))
            .FirstOrDefault(File.Exists);
    }
}
