using System.Diagnostics;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Tests.Infrastructure;

namespace Understudy.GuestAgent.Tests;

// When kill -9 does not end a group, the agent logs what its processes wait on in the kernel.
public class ProcFsWaitsTests
{
    [Fact]
    public async Task NamespaceWaits_NameEachThreadsStateWaitChannelAndKernelStack()
    {
        // unshare forks the namespace's PID 1, which execs sleep
        using var unshare = Process.Start(new ProcessStartInfo("unshare") { ArgumentList = { "--pid", "--fork", "sleep", "1000" } })!;
        try
        {
            int sleeper = 0;
            await Eventually.TrueAsync(() => (sleeper = ChildOf(unshare.Id) ?? 0) > 0, "unshare's child, PID 1 of a new pid namespace, exists");
            await Eventually.TrueAsync(() => ProcFs.ThreadStates(sleeper) is [{ State: 'S' }] && ProcFs.ExecutablePath(sleeper).EndsWith("/sleep", StringComparison.Ordinal),
                "that child runs sleep and sleeps");

            var waits = ProcFs.DescribeNamespaceWaits(sleeper);

            Assert.Contains($"{sleeper} (sleep)", waits, StringComparison.Ordinal);
            Assert.Contains($"thread {sleeper} state S wchan ", waits, StringComparison.Ordinal);
            Assert.Contains("nanosleep", waits, StringComparison.Ordinal);   // the wait channel, or the stack as root
            Assert.DoesNotContain("(unshare)", waits, StringComparison.Ordinal);   // outside the namespace
        }
        finally
        {
            unshare.Kill(entireProcessTree: true);
            await unshare.WaitForExitAsync();
        }
    }

    private static int? ChildOf(int parent)
    {
        try
        {
            var children = File.ReadAllText($"/proc/{parent}/task/{parent}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return children.Length == 1 ? int.Parse(children[0], System.Globalization.CultureInfo.InvariantCulture) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
