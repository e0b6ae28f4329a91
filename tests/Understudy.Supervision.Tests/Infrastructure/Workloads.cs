using System.Net;
using System.Net.Sockets;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>The availability workload (native/tests/workloads/wl_service.c) and what it needs.</summary>
public static class Workloads
{
    public static string Service => Repo.Workload("wl_service");

    /// <summary>
    /// A policy's `apps:` (at the top level of the document): a server on <paramref name="port"/>
    /// with an HTTP health check, then a worker and a client connected to it, in launch order.
    /// </summary>
    public static string ServiceApps(int port) => $$"""
        apps:
          - name: server
            command: {{Service}}
            args: [server, --tcp, "{{port}}"]
            ready: { tcp: "{{port}}", timeout: 20s }
            health:
              - http: http://127.0.0.1:{{port}}/health
                interval: 500ms
                timeout: 2s
          - name: worker
            command: {{Service}}
            args: [worker, --connect, "{{port}}"]
            after: [server]
          - name: client
            command: {{Service}}
            args: [client, --connect, "{{port}}"]
            after: [worker]
            ready: { delay: 200ms }
        """;

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on now.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The 1-based line of the first line of <paramref name="yaml"/> that contains <paramref name="text"/>.</summary>
    public static int LineOf(string yaml, string text)
    {
        var lines = yaml.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Contains(text, StringComparison.Ordinal))
            {
                return i + 1;
            }
        }

        throw new ArgumentException($"'{text}' is not in the policy");
    }
}
