// Real labs (network namespaces as nodes), real agents: one test at a time. The lab tests are an
// assembly of their own so that they run beside the single-node integration tests (dotnet test
// runs two test assemblies at once on two cores): they mostly wait on peers and links.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
