namespace Understudy.GuestAgent.Model.Init;

/// <summary>us-init refused a request (ERROR) or is gone.</summary>
internal sealed class InitProcessException(string message) : Exception(message);
