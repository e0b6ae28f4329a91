using System.Text.Json.Serialization;
using Understudy.Hactl.Demo;
using Understudy.Hactl.Lab;

namespace Understudy.Hactl.Output;

/// <summary>
/// The shapes of the documents hactl prints, serialized by code generated at build time: hactl
/// is compiled ahead of time, without reflection. A new document type is added here.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DictionaryKeyPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(LaunchResult))]
[JsonSerializable(typeof(CheckpointSummary))]
[JsonSerializable(typeof(MigrationSummary))]
[JsonSerializable(typeof(StopResult))]
[JsonSerializable(typeof(RestoreResult))]
[JsonSerializable(typeof(StatusResult))]
[JsonSerializable(typeof(ImagesListResult))]
[JsonSerializable(typeof(VerifyResult))]
[JsonSerializable(typeof(DoctorResult))]
[JsonSerializable(typeof(ApplyResult))]
[JsonSerializable(typeof(GroupActionResult))]
[JsonSerializable(typeof(GroupDeleteResult))]
[JsonSerializable(typeof(GroupView))]
[JsonSerializable(typeof(EventView))]
[JsonSerializable(typeof(EventsResult))]
[JsonSerializable(typeof(DemoReport))]
[JsonSerializable(typeof(LabState))]
[JsonSerializable(typeof(LabUpResult))]
[JsonSerializable(typeof(LabStatusResult))]
[JsonSerializable(typeof(LabNodeView))]
public sealed partial class HactlJsonContext : JsonSerializerContext;
