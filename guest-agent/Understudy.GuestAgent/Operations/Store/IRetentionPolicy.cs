namespace Understudy.GuestAgent.Operations.Store;

/// <summary>
/// How many committed checkpoints a group keeps after each new one; the groups' policies say
/// (the supervision layer implements it), a group without one keeps them all.
/// </summary>
internal interface IRetentionPolicy
{
    /// <returns>the number to keep, or null to keep every checkpoint</returns>
    int? RetentionOf(string group);
}
