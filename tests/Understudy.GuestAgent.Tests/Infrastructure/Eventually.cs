namespace Understudy.GuestAgent.Tests.Infrastructure;

/// <summary>Waits for a condition the agent reaches on its own threads.</summary>
internal static class Eventually
{
    /// <summary>
    /// Polls <paramref name="condition"/>. The limit only keeps a broken agent from hanging the
    /// run; no test measures time.
    /// </summary>
    public static async Task TrueAsync(Func<bool> condition, string what)
    {
        var limit = DateTime.UtcNow.AddMinutes(1);
        while (!condition())
        {
            if (DateTime.UtcNow > limit)
            {
                throw new TimeoutException($"gave up waiting until {what}");
            }
            await Task.Delay(10);
        }
    }
}
