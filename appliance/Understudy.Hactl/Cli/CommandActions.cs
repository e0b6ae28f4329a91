using System.CommandLine;
using Grpc.Core;
using Understudy.GuestAgent.CommandLine;

namespace Understudy.Hactl.Cli;

/// <summary>
/// Runs a command's body and turns every failure into one line on stderr and an exit code,
/// never a stack trace (set HACTL_DEBUG=1 to see one).
/// </summary>
public static class CommandActions
{
    public static void SetHandler(this Command command, Func<ParseResult, CancellationToken, Task<int>> body) =>
        command.SetAction((parseResult, ct) => RunAsync(command.Name, () => body(parseResult, ct), ct));

    public static async Task<int> RunAsync(string commandName, Func<Task<int>> body, CancellationToken ct)
    {
        try
        {
            return await body();
        }
        catch (HactlException e)
        {
            Report(e.ToLine(), e);
            return e.ExitCode;
        }
        catch (Exception e) when (IsCancellation(e, ct))
        {
            Report(ErrorLine.Format(HactlCli.ProgramName, $"{commandName} interrupted", "cancelled by a signal", "nothing else to do; run the command again if needed"), e);
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            Report(ErrorLine.Format(HactlCli.ProgramName, $"{commandName} failed", $"{e.GetType().Name}: {ErrorLine.Clause(e.Message)}",
                "this is unexpected; rerun with HACTL_DEBUG=1 for details and report it"), e);
            return ExitCodes.Failure;
        }
    }

    private static bool IsCancellation(Exception e, CancellationToken ct) =>
        ct.IsCancellationRequested &&
        (e is OperationCanceledException || e is RpcException { StatusCode: StatusCode.Cancelled });

    private static void Report(string line, Exception e)
    {
        Console.Error.WriteLine(line);
        if (Environment.GetEnvironmentVariable("HACTL_DEBUG") is "1" or "true")
        {
            Console.Error.WriteLine(e);
        }
    }
}
