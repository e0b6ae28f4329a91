using System.Globalization;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Understudy.GuestAgent.Hosting;

/// <summary>The agent's Serilog logger: structured events on stderr (stdout belongs to hactl's output).</summary>
internal static class AgentLogging
{
    public static Serilog.Core.Logger CreateLogger(bool json)
    {
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Information()
            // Framework chatter (Kestrel, hosting, gRPC per-call logs) only when something is wrong.
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
            // A start that fails is reported by AgentHost, in one line when it is a refusal.
            .MinimumLevel.Override("Microsoft.Extensions.Hosting.Internal.Host", LogEventLevel.Fatal)
            .Enrich.FromLogContext();
        return json
            ? configuration.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger()
            : configuration.WriteTo.Console(
                outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}",
                formatProvider: CultureInfo.InvariantCulture,
                standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger();
    }
}
