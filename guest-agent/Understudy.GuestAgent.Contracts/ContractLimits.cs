namespace Understudy.GuestAgent.Contracts;

/// <summary>Sizes the contract sets, so that a caller can refuse what the agent would.</summary>
public static class ContractLimits
{
    /// <summary>The most a policy document may weigh (ApplyPolicyRequest.yaml): real ones are a few KiB.</summary>
    public const int MaxPolicyBytes = 1 << 20;
}
