using System.Globalization;

namespace Understudy.GuestAgent.Supervision.Policies;

/// <summary>What a readiness condition or a health check looks at.</summary>
internal abstract record ProbeSpec
{
    /// <summary>The policy key that names this kind: tcp, http, command, file, delay or alive.</summary>
    public abstract string Kind { get; }

    /// <summary>How events and hactl show it: "tcp 127.0.0.1:8080".</summary>
    public abstract string Describe();
}

/// <summary>A TCP connection to <see cref="Host"/>:<see cref="Port"/> is accepted.</summary>
internal sealed record TcpProbeSpec(string Host, int Port) : ProbeSpec
{
    public override string Kind => "tcp";

    public override string Describe() => $"tcp {Host}:{Port.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>An HTTP GET of <see cref="Url"/> answers with a status below 400.</summary>
internal sealed record HttpProbeSpec(Uri Url) : ProbeSpec
{
    public override string Kind => "http";

    public override string Describe() => $"http {Url}";
}

/// <summary>A command, run by the agent outside the group, exits with code 0.</summary>
internal sealed record CommandProbeSpec(IReadOnlyList<string> Argv) : ProbeSpec
{
    public override string Kind => "command";

    public override string Describe() => "command " + string.Join(' ', Argv);

    // Records compare lists by reference; policy changes are detected by value.
    public bool Equals(CommandProbeSpec? other) => other is not null && Argv.SequenceEqual(other.Argv);

    public override int GetHashCode() => Argv.Count;
}

/// <summary>A file (of any type) exists. Readiness only.</summary>
internal sealed record FileProbeSpec(string Path) : ProbeSpec
{
    public override string Kind => "file";

    public override string Describe() => $"file {Path}";
}

/// <summary>Some time has passed since the launch. Readiness only.</summary>
internal sealed record DelayProbeSpec(TimeSpan Delay) : ProbeSpec
{
    public override string Kind => "delay";

    public override string Describe() => $"delay {DurationFormat.Format(Delay)}";
}

/// <summary>The application's process is still there. Health only.</summary>
internal sealed record AliveProbeSpec : ProbeSpec
{
    public override string Kind => "alive";

    public override string Describe() => "alive";
}
