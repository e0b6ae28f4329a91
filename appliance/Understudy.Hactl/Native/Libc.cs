using System.Runtime.InteropServices;

namespace Understudy.Hactl.Native;

/// <summary>The libc calls hactl makes: signals and exec.</summary>
internal static partial class Libc
{
    public const int SigPipe = 13;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>SIG_DFL, for <see cref="Signal"/>.</summary>
    public const nint SigDfl = 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    /// <summary>Sets a signal's disposition; returns the previous one.</summary>
    [LibraryImport("libc", EntryPoint = "signal")]
    public static partial nint Signal(int signal, nint handler);

    /// <summary>argv ends with null. Returns only on failure (errno set).</summary>
    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Execv(string path, string?[] argv);
}
