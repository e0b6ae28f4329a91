// The integration tests run real process groups (up to 256 MiB each) on small
// machines: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
