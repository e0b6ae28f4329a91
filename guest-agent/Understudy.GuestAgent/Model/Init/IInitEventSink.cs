using Understudy.GuestAgent.Model.Protocol;

namespace Understudy.GuestAgent.Model.Init;

/// <summary>Receives what us-init reports on its own: reaped processes and its own end.</summary>
internal interface IInitEventSink
{
    void OnMemberExited(InitProcess init, InitExited exit);

    /// <param name="expected">the agent stopped or killed it.</param>
    void OnInitExited(InitProcess init, int exitCode, bool expected);
}
