namespace Understudy.GuestAgent.Foundation.Interop;

/// <summary>One thread of a host process and its scheduler state letter (<see cref="ProcFs.ThreadStates"/>).</summary>
internal readonly record struct ThreadState(int Tid, char State);
