using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Understudy.GuestAgent.Foundation.Configuration;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Foundation.Interop;
using Understudy.GuestAgent.Hosting;

namespace Understudy.GuestAgent;

/// <summary>Runs a node's guest agent in the foreground (understudy-agent, <c>hactl agent run</c>).</summary>
public static class AgentHost
{
    /// <summary>
    /// Serves the gRPC API on <see cref="AgentHostOptions.ListenSocket"/> and the member
    /// protocol on STATE/coord.sock until <paramref name="cancellationToken"/> is cancelled or
    /// the process gets SIGTERM/SIGINT; then stops every group. Logs go to stderr.
    /// </summary>
    /// <exception cref="Exception">startup failed; the message is one line that says why.</exception>
    public static async Task RunAsync(AgentHostOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var logger = AgentLogging.CreateLogger(options.JsonLogs);
        try
        {
            var socket = AgentApplication.ApiSocketPath(options.ListenSocket);
            var createdDirectory = !Directory.Exists(Path.GetDirectoryName(socket));
            UnixSocketFile.PrepareForBind(socket);

            await using var app = AgentApplication.Build(options, logger);
            // Before the host starts, which would log a refusal with a stack trace.
            StateDirectoryInitializer.Verify(app.Services.GetRequiredService<StatePaths>());
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            // Kestrel binds with the process umask; the API socket is private to the agent's user.
            File.SetUnixFileMode(socket, UnixSocketFile.OwnerOnly);
            logger.Information(
                "Guest agent listening on {Socket} (state {StateDir}{Created})",
                socket, Path.GetFullPath(options.StateDir), createdDirectory ? ", socket directory created 0700" : "");

            await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            logger.Information("Guest agent stopped");
        }
        catch (AgentException e)
        {
            // A refusal that says what to do (the state directory is in use, a socket is taken): no stack trace.
            logger.Error("Guest agent failed: {Error}", e.Message);
            throw;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.Error(e, "Guest agent failed: {Error}", e.Message);
            throw;
        }
    }
}
