namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// How many committed checkpoints a group keeps after each new one: its policy says, else the
/// agent's --retention (the supervision layer implements it).
/// </summary>
internal interface IRetentionPolicy
{
    /// <returns>the number to keep, or null to keep every checkpoint</returns>
    int? RetentionOf(string group);
}
