using Microsoft.Extensions.Logging.Abstractions;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Model.Groups;
using Understudy.GuestAgent.Model.Init;
using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.Supervision.Tests;

/// <summary>
/// What a restore that resumes app by app relies on, without an agent: us-init's exit reports
/// are kept so that a process found gone can be described ("was killed by signal 6"), and the
/// registration lock lets resumed processes fork while checkpoints still wait.
/// </summary>
public sealed class RestoreResumeUnitTests
{
    [Fact]
    public async Task ReapedProcesses_AnswerHowAProcessEnded_WhetherAskedBeforeOrAfterItsReport()
    {
        var reaped = new ReapedProcesses();
        var early = reaped.WhenReaped(2);
        Assert.False(early.IsCompleted);

        reaped.Record(new InitExited(2, 0, 6));
        reaped.Record(new InitExited(3, 3, 0));

        Assert.Equal("was killed by signal 6", (await early).How);
        Assert.Equal("exited with code 3", (await reaped.WhenReaped(3)).How);
    }

    [Fact]
    public async Task ReapedProcesses_ForgetAnExit_WhenItsVpidIsLaunchedAgain()
    {
        var reaped = new ReapedProcesses();
        reaped.Record(new InitExited(5, 1, 0));
        Assert.True(reaped.WhenReaped(5).IsCompleted);

        reaped.Launched(5);

        var next = reaped.WhenReaped(5);
        Assert.False(next.IsCompleted);
        reaped.Record(new InitExited(5, 0, 9));
        Assert.Equal(9, (await next).Signal);
    }

    [Fact]
    public async Task RegistrationGate_WhileRestoredProcessesResume_AdmitsForks_ButRefusesCheckpoints()
    {
        var gate = new RegistrationGate("g", TimeSpan.FromMinutes(1), TimeProvider.System, NullLogger.Instance, _ => { });
        using var lease = await gate.HoldForRestoreAsync(CancellationToken.None);

        // Before every restored process is back, a fork waits.
        using var cancel = new CancellationTokenSource();
        var waiting = gate.BeginAsync(RegistrationKind.Fork, 2, cancel.Token);
        Assert.False(waiting.IsCompleted);

        gate.BeginResuming();
        Assert.Equal(GateMode.Resuming, gate.Mode);
        var fork = await waiting.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(RegistrationKind.Fork, fork.Kind);
        gate.Finish(fork);

        var refused = await Assert.ThrowsAsync<AgentException>(
            () => gate.CloseForCheckpointAsync(TimeSpan.FromSeconds(1), CancellationToken.None));
        Assert.Contains("is being restored", refused.Message);

        lease.Dispose();
        Assert.Equal(GateMode.Open, gate.Mode);
    }
}
