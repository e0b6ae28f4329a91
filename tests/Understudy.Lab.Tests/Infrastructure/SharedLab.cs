using Xunit.Abstractions;

namespace Understudy.Lab.Tests.Infrastructure;

/// <summary>
/// One lab of two nodes for all the tests of a class (lab tests are slow): brought up before the
/// first, taken down after the last, then checked from outside to have left nothing behind
/// (<see cref="LabLeftovers.AssertNothingLeft"/>). Each test routes the lab's notes to its own
/// output with <see cref="For"/>, and leaves both nodes up for the next.
/// </summary>
public class SharedLab : IAsyncLifetime
{
    private readonly ForwardingOutput _output = new();
    private readonly string _dir = LabSession.NewDir();
    private readonly IReadOnlyDictionary<string, string>? _environment;
    private LabFootprint? _before, _during;

    public SharedLab()
    {
    }

    /// <param name="environment">for the nodes' agents (fault injection)</param>
    protected SharedLab(IReadOnlyDictionary<string, string> environment) => _environment = environment;

    public LabSession Lab { get; private set; } = null!;

    /// <summary>The lab's notes go to <paramref name="output"/> until the result is disposed.</summary>
    public IDisposable For(ITestOutputHelper output) => _output.To(output);

    public async Task InitializeAsync()
    {
        _before = await LabFootprint.TakeAsync(_dir);
        Lab = await LabSession.UpAsync(_output, nodes: 2, _dir, _environment);
        _during = await LabFootprint.TakeAsync(_dir, pin: true);
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Lab.DisposeAsync();
            await LabLeftovers.AssertNothingLeft(_output, _dir, _before!, _during!);
        }
        finally
        {
            _during?.Dispose();
        }
    }

    /// <summary>Writes to the output of the test that runs now (nowhere between tests).</summary>
    private sealed class ForwardingOutput : ITestOutputHelper
    {
        private ITestOutputHelper? _current;

        public IDisposable To(ITestOutputHelper output)
        {
            Volatile.Write(ref _current, output);
            return new Ending(this, output);
        }

        public void WriteLine(string message) => Volatile.Read(ref _current)?.WriteLine(message);

        public void WriteLine(string format, params object[] args) => Volatile.Read(ref _current)?.WriteLine(format, args);

        private sealed class Ending(ForwardingOutput forwarding, ITestOutputHelper output) : IDisposable
        {
            public void Dispose() => Interlocked.CompareExchange(ref forwarding._current, null, output);
        }
    }
}
