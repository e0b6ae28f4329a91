using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Understudy.Hactl.Cli;

namespace Understudy.Hactl.Native;

/// <summary>Replaces the hactl process with another program (execv), as a shell's <c>exec</c> does.</summary>
internal static class ProcessImage
{
    /// <summary>
    /// Runs <paramref name="program"/> in place of hactl, with hactl's pid, environment and open
    /// standard streams; returns only by throwing, when the exec fails.
    /// </summary>
    /// <param name="what">what failed, for the error line.</param>
    [DoesNotReturn]
    public static void Replace(string program, IReadOnlyList<string> args, string what)
    {
        string?[] argv = [program, .. args, null];
        Console.Out.Flush();
        Console.Error.Flush();
        // The .NET runtime ignores SIGPIPE, and an ignored signal stays ignored across exec:
        // the program starts as it would from a shell.
        var sigPipe = Libc.Signal(Libc.SigPipe, Libc.SigDfl);
        Libc.Execv(program, argv);
        var errno = Marshal.GetLastPInvokeError();
        Libc.Signal(Libc.SigPipe, sigPipe);
        throw new HactlException(what, $"execv {program} failed: {Marshal.GetPInvokeErrorMessage(errno)}",
            "check that it is an executable file (./build.sh builds it)");
    }
}
