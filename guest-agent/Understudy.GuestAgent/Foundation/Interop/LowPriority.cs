using System.Runtime.InteropServices;

namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>
/// Lowers the calling thread's CPU priority (nice 10) and I/O priority (the idle class), so
/// that background merges yield to the applications and to checkpoints. Linux applies both per
/// thread. Best effort: where it is not allowed, merges simply run at normal priority.
/// </summary>
internal static class LowPriority
{
    private const int PrioProcess = 0;      // with a thread id: that thread only
    private const int IoprioWhoProcess = 1;
    private const int IoprioClassIdle = 3;
    private const int IoprioClassShift = 13;

    /// <returns>What could be done, for the log.</returns>
    public static string ApplyToCurrentThread()
    {
        int tid = GetTid();
        bool nice = SetPriority(PrioProcess, tid, 10) == 0;
        long ioprioSet = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 251,
            Architecture.Arm64 => 30,
            _ => -1,
        };
        bool idle = ioprioSet > 0 && Syscall(ioprioSet, IoprioWhoProcess, tid, IoprioClassIdle << IoprioClassShift) == 0;
        return (nice, idle) switch
        {
            (true, true) => "nice 10, idle I/O class",
            (true, false) => "nice 10 (the idle I/O class was refused)",
            (false, true) => "idle I/O class (nice was refused)",
            _ => "normal priority (lowering it was refused)",
        };
    }

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    [DllImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static extern int SetPriority(int which, int who, int priority);

    // syscall(2) is variadic; on x86_64 and aarch64 Linux integer arguments pass as for a fixed prototype.
    [DllImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long a, long b, long c);
}
