using Xunit.Abstractions;

namespace Understudy.Supervision.Tests.Infrastructure;

/// <summary>
/// A real agent on a fresh temporary directory for a test class. On dispose every group is
/// stopped, the agent is stopped, and every process left below the test process is killed and
/// reaped, whether the tests passed or not.
/// </summary>
public class SupervisionFixture : IAsyncLifetime
{
    private static int _groupCounter;
    private readonly List<string> _groups = [];

    public string TempDir { get; private set; } = "";
    public AgentProcess Agent { get; private set; } = null!;
    public Hactl Hactl { get; private set; } = new(null);

    public async Task InitializeAsync()
    {
        Native.BecomeSubreaper();
        TempDir = Path.Combine("/tmp", "us-av-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(TempDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Agent = new AgentProcess(TempDir);
        Hactl = new Hactl(Agent.Address);
        await PrepareAsync();
        await Agent.StartAsync();
    }

    /// <summary>Runs before the agent first starts: a fixture may lay out its state directory.</summary>
    protected virtual Task PrepareAsync() => Task.CompletedTask;

    /// <summary>Runs once the agent is stopped and every process is gone, before the temporary directory goes.</summary>
    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    /// <summary>A group name of its own for one test, and a session that cleans it up.</summary>
    public SupervisedGroup Group(string prefix, ITestOutputHelper output)
    {
        var name = $"{prefix}-{Interlocked.Increment(ref _groupCounter)}";
        lock (_groups)
        {
            _groups.Add(name);
        }

        return new SupervisedGroup(this, name, output);
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Agent.Running)
            {
                List<string> groups;
                lock (_groups)
                {
                    groups = [.. _groups];
                }

                foreach (var group in groups)
                {
                    try { await Hactl.Run(["stop", group], timeout: Timeouts.Cleanup); }
                    catch (TimeoutException) { }
                }
            }
        }
        finally
        {
            await Agent.StopAsync();
            await ProcessSweeper.SweepAsync(Timeouts.Cleanup);
            Agent.CloseLog();
            await CleanUpAsync();
            if (Environment.GetEnvironmentVariable("UNDERSTUDY_IT_KEEP") != "1")
            {
                try { Directory.Delete(TempDir, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
    }
}

/// <summary>The agent shared by the test classes of this collection.</summary>
[CollectionDefinition(Name)]
public sealed class AgentCollection : ICollectionFixture<SupervisionFixture>
{
    public const string Name = "supervision agent";
}
