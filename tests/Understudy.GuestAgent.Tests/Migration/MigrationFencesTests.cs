using Microsoft.Extensions.Logging.Abstractions;
using Understudy.GuestAgent.Foundation.Errors;
using Understudy.GuestAgent.Operations.Migration;

namespace Understudy.GuestAgent.Tests.Migration;

/// <summary>
/// The target's fences of abandoned migrations (docs/architecture.md, "Moving a live group"): a
/// fenced migration's takeover is refused however late it comes, also after the agent started
/// again on the same state directory; a takeover in progress is stopped by the fence.
/// </summary>
public sealed class MigrationFencesTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("us-fences-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private MigrationFences Agent() => new(_state, NullLogger<MigrationFences>.Instance);

    [Fact]
    public void AFencedMigration_IsRefused_EvenAfterTheAgentStartsAgain()
    {
        Agent().Fence("shop", "000007");

        var restarted = Agent();
        var refused = Assert.Throws<AgentException>(() => restarted.Enter("shop", "000007", "node-a", CancellationToken.None));
        Assert.Equal(AgentErrorKind.FailedPrecondition, refused.Kind);
        Assert.Contains("node node-a gave that migration up already", refused.Message);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_state, "migration-fences", "shop")));

        // Another migration of the group, or the same checkpoint of another group, is not fenced.
        restarted.Enter("shop", "000009", "node-a", CancellationToken.None).Dispose();
        restarted.Enter("cart", "000007", "node-a", CancellationToken.None).Dispose();
    }

    [Fact]
    public void AFence_StopsTheTakeoverInProgress_AndKeepsEveryFenceOfTheGroup()
    {
        var fences = Agent();
        fences.Fence("shop", "000003");
        using var takeover = fences.Enter("shop", "000007", "node-a", CancellationToken.None);
        Assert.False(takeover.Token.IsCancellationRequested);

        fences.Fence("shop", "000007");

        Assert.True(takeover.Token.IsCancellationRequested);
        var restarted = Agent();
        Assert.Throws<AgentException>(() => restarted.Enter("shop", "000003", "node-a", CancellationToken.None));
        Assert.Throws<AgentException>(() => restarted.Enter("shop", "000007", "node-a", CancellationToken.None));
    }

    [Fact]
    public void ATakeover_EndsWithItsCall()
    {
        using var call = new CancellationTokenSource();
        using var takeover = Agent().Enter("shop", "000007", "node-a", call.Token);

        call.Cancel();

        Assert.True(takeover.Token.IsCancellationRequested);
    }
}
