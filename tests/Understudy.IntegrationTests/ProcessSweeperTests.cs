using System.Diagnostics;
using System.Globalization;
using Understudy.IntegrationTests.Infrastructure;

namespace Understudy.IntegrationTests;

// The sweeper decides which processes are the test's by walking up their parents in /proc,
// one file at a time. KillMembers stops a group's members, then kills them one by one: a
// parent killed first may be reaped by us-init while the walk for its child is between two
// reads. Such a child was found "not ours", never got SIGKILL and stayed stopped, and the
// test failed after 60 s with "members ... still run after kill -9".
public sealed class ProcessSweeperTests
{
    [Fact, Trait("Category", "Integration")]
    public async Task ChildWhoseParentIsReapedDuringTheWalk_IsStillOurs()
    {
        Native.BecomeSubreaper();
        using var parent = Process.Start(new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "sleep 1000 & echo $!; wait" },
            RedirectStandardOutput = true,
        })!;
        ProcessSweeper.RegisterDotnetChild(parent.Id);
        int child = int.Parse((await parent.StandardOutput.ReadLineAsync())!, CultureInfo.InvariantCulture);
        try
        {
            bool reaped = false;
            bool ours = ProcessSweeper.IsOurs(child, beforeParentRead: p =>
            {
                if (p != parent.Id || reaped)
                {
                    return;
                }

                // The instant of the race, made certain: the parent dies and is reaped, and
                // its child passes to the nearest subreaper, this test process.
                Native.Kill(p, Native.SIGKILL);
                parent.WaitForExit();
                reaped = Native.ReadStat(p) is null;
            });

            Assert.True(reaped, $"the walk up from {child} never read its parent {parent.Id}, or the parent was not reaped");
            Assert.True(ours, $"process {child}, whose parent was killed and reaped while its ancestry was read, " +
                              "was not found to be the test's: kill -9 would never be sent to it");
        }
        finally
        {
            Native.Kill(child, Native.SIGKILL);
            Native.Kill(parent.Id, Native.SIGKILL);
            await ProcessSweeper.WaitGone([child], Timeouts.Cleanup);
            ProcessSweeper.ReapZombies();
        }
    }
}
