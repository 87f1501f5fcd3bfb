using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Reflection;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ChunkSeg.Cli.Telemetry;

/// <summary>
/// Exports ChunkSeg's spans and metrics by OTLP, only when the standard variables ask for it: a traces exporter when
/// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, a metrics exporter when
/// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set (OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER
/// = none and OTEL_SDK_DISABLED = true switch them off); otherwise nothing is started and the instrumentation costs
/// next to nothing. The SDK (1.20.1) reads the variables common to all signals itself, checked by hand:
/// OTEL_EXPORTER_OTLP_PROTOCOL (grpc, the default, or http/protobuf), OTEL_EXPORTER_OTLP_HEADERS and
/// OTEL_METRIC_EXPORT_INTERVAL (ms); the per-signal ones are applied here (<see cref="ApplySignalVariables"/>).
/// </summary>
internal static class TelemetrySetup
{
    private const string Endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Starts the exporters, or returns null when no OTLP endpoint is set. Disposing flushes both.</summary>
    /// <param name="serviceName">service.name unless OTEL_SERVICE_NAME is set, e.g. <c>chunkseg-run</c>.</param>
    public static IDisposable? Start(string serviceName) => Start(serviceName, Environment.GetEnvironmentVariable);

    /// <summary>As <see cref="Start(string)"/>, deciding from <paramref name="variables"/> (tests).</summary>
    internal static IDisposable? Start(string serviceName, Func<string, string?> variables)
    {
        bool Set(string name) => !string.IsNullOrWhiteSpace(variables(name));
        bool Off(string name) => string.Equals(variables(name)?.Trim(), "none", StringComparison.OrdinalIgnoreCase);
        if (string.Equals(variables("OTEL_SDK_DISABLED")?.Trim(), "true", StringComparison.OrdinalIgnoreCase)) return null;
        bool traces = (Set(Endpoint) || Set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && !Off("OTEL_TRACES_EXPORTER");
        bool metrics = (Set(Endpoint) || Set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")) && !Off("OTEL_METRICS_EXPORTER");
        if (!traces && !metrics) return null;

        void Describe(ResourceBuilder resource) => TelemetrySetup.Describe(resource, serviceName, variables);

        _ = ChunkSegTelemetry.Meter;   // publishes the gauges (worker memory) even in commands that process no chunk
        var tracer = traces
            ? Sdk.CreateTracerProviderBuilder().ConfigureResource(Describe).AddSource(ChunkSegTelemetry.Name)
                .AddOtlpExporter(o => ApplySignalVariables(o, "TRACES", variables)).Build()
            : null;
        var meter = metrics
            ? Sdk.CreateMeterProviderBuilder().ConfigureResource(Describe).AddMeter(ChunkSegTelemetry.Name)
                .AddOtlpExporter(o => ApplySignalVariables(o, "METRICS", variables)).Build()
            : null;
        return new Providers(tracer, meter);
    }

    /// <summary>
    /// Who is reporting, the same for every exporter (OTLP, and the cluster processes' /metrics): service.name (OTEL_SERVICE_NAME
    /// if set, else <paramref name="serviceName"/>), service.version, host.name, then OTEL_RESOURCE_ATTRIBUTES (a later
    /// resource wins, so the user can override host.name).
    /// </summary>
    public static void Describe(ResourceBuilder resource, string serviceName, Func<string, string?> variables)
    {
        string name = variables("OTEL_SERVICE_NAME") is { } set && !string.IsNullOrWhiteSpace(set) ? set.Trim() : serviceName;
        string? version = typeof(TelemetrySetup).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        resource.Clear()
            .AddService(name, serviceVersion: version)
            .AddAttributes([new("host.name", Environment.MachineName)])
            .AddTelemetrySdk()
            .AddEnvironmentVariableDetector();
    }

    /// <summary>
    /// AddOtlpExporter reads only the OTEL_EXPORTER_OTLP_* variables common to all signals (UseOtlpExporter reads the
    /// per-signal ones, but builds a provider for every signal, and those export to the default endpoint): so the
    /// per-signal endpoint, protocol, headers and timeout are applied here. A per-signal endpoint is used as given,
    /// without /v1/traces or /v1/metrics appended (as the specification says).
    /// </summary>
    private static void ApplySignalVariables(OtlpExporterOptions options, string signal, Func<string, string?> variables)
    {
        string? Get(string name) => variables($"OTEL_EXPORTER_OTLP_{signal}_{name}") is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;
        if (Get("ENDPOINT") is { } endpoint)
            options.Endpoint = Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) ? uri
                : throw new UsageException($"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT must be an absolute URL; got '{endpoint}'");
        if (Get("PROTOCOL") is { } protocol)
            options.Protocol = protocol switch
            {
                "grpc" => OtlpExportProtocol.Grpc,
                "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
                _ => throw new UsageException($"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL must be grpc or http/protobuf; got '{protocol}'"),
            };
        if (Get("HEADERS") is { } headers) options.Headers = headers;
        if (Get("TIMEOUT") is { } timeout)
            options.TimeoutMilliseconds = int.TryParse(timeout, NumberStyles.None, CultureInfo.InvariantCulture, out int ms) ? ms
                : throw new UsageException($"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT must be milliseconds; got '{timeout}'");
    }

    /// <summary><c>chunkseg-</c> and the invoked (sub)command's path: chunkseg-run, chunkseg-bench-label.</summary>
    public static string ServiceNameFor(ParseResult parse)
    {
        var names = new List<string>();
        for (var command = parse.CommandResult; command.Parent is CommandResult parent; command = parent) names.Insert(0, command.Command.Name);
        return string.Join('-', ["chunkseg", .. names]);
    }

    private sealed class Providers(TracerProvider? tracer, MeterProvider? meter) : IDisposable
    {
        public void Dispose()
        {
            tracer?.Dispose();   // shuts down: exports the spans still batched
            meter?.Dispose();    // a last collection and export
        }
    }
}
