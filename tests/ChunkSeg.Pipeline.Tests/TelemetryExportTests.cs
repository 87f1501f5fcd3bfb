using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ChunkSeg.Cli.Telemetry;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.Pipeline.Tests.Otlp;
using Google.Protobuf.Collections;

namespace ChunkSeg.Pipeline.Tests;

/// <summary>
/// OpenTelemetry end to end: the real CLI, as its own process with the standard OTEL_* variables, exports to a
/// loopback OTLP/HTTP receiver here; the test decodes what arrived (Otlp/*.proto) and checks the span tree
/// job → chunk → stage/write, the chunk metrics against the spans, and the resource. Without the variables nothing starts.
/// </summary>
public sealed class TelemetryExportTests : IDisposable
{
    private const long Volume = 32 * 32 * 32;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Without_an_otlp_endpoint_nothing_starts()
    {
        Assert.Null(TelemetrySetup.Start("chunkseg-test", _ => null));
        // Other OTEL variables alone start nothing; an endpoint with its signal switched off starts nothing either.
        Assert.Null(TelemetrySetup.Start("chunkseg-test", v => v is "OTEL_SERVICE_NAME" or "OTEL_EXPORTER_OTLP_PROTOCOL" ? "x" : null));
        Assert.Null(TelemetrySetup.Start("chunkseg-test", v => v switch
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => "http://127.0.0.1:1/v1/traces",
            "OTEL_TRACES_EXPORTER" => "none",
            _ => null,
        }));
        Assert.Null(TelemetrySetup.Start("chunkseg-test", v => v switch
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => "http://127.0.0.1:1",
            "OTEL_SDK_DISABLED" => "true",
            _ => null,
        }));
    }

    [Fact]
    public void A_trace_context_round_trips_through_a_chunk_message()
    {
        using var sending = new Activity("send").SetIdFormat(ActivityIdFormat.W3C).Start();
        sending.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        sending.TraceStateString = "chunkseg=1";
        var (traceParent, traceState) = ChunkSegTelemetry.Inject(sending);
        Assert.Equal($"00-{sending.TraceId}-{sending.SpanId}-01", traceParent);

        // Through the cluster's wire format, as a gpu-node receives it.
        var job = new JobSpec(new JobId("j"), "label", "/in", "/out", new Long3(8, 8, 8), new Halo(1, 1, 1), new Dictionary<string, string>());
        var work = (ChunkWork)ClusterWire.Decode(ClusterWire.Encode(new ChunkWork(job, 3, 1, 7, traceParent, traceState)), "chunk-work.v1");
        var parent = ChunkSegTelemetry.Extract(work.TraceParent, work.TraceState);
        Assert.Equal((sending.TraceId, sending.SpanId, ActivityTraceFlags.Recorded, "chunkseg=1", true),
            (parent.TraceId, parent.SpanId, parent.TraceFlags, parent.TraceState, parent.IsRemote));

        Assert.Equal(default, ChunkSegTelemetry.Extract(null, null));
        Assert.Equal(default, ChunkSegTelemetry.Extract("00-not-a-context-01", null));
        Assert.Equal((null, null), ChunkSegTelemetry.Inject(null));
    }

    [Fact]
    public async Task A_run_exports_job_chunk_and_stage_spans_and_chunk_metrics_by_otlp()
    {
        // A small real volume and a model for it, made in this process (no OTEL variables here: nothing exported).
        string data = _dir["demo"], model = _dir["nuclei.model"];
        await Ok("demo", "--data-only", "--shape", "32,32,32", "--nuclei", "6", "--out", data);
        string raw = Path.Combine(data, "nuclei.zarr");
        await Ok("train", raw, Path.Combine(data, "strokes.zarr"), "--out", model, "--features", "GaussianSmoothing:1.0;LaplacianOfGaussian:1.6", "--trees", "4");

        await using var receiver = await OtlpReceiver.StartAsync();
        await Chunkseg(new()
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
        }, "run", raw, "--model", model, "--out", _dir["run"], "--chunk", "16,16,16", "--workers", "2", "--mesh", "none");

        Assert.Empty(receiver.Refused);

        // Resource: the default service name is the command's.
        var resource = Assert.Single(receiver.Traces.SelectMany(t => t.ResourceSpans).Select(r => r.Resource).DistinctBy(r => r.ToString()));
        Assert.Equal("chunkseg-run", Attribute(resource.Attributes, "service.name"));
        Assert.False(string.IsNullOrEmpty(Attribute(resource.Attributes, "service.version") as string));
        Assert.Equal(Environment.MachineName, Attribute(resource.Attributes, "host.name"));

        // Spans: job → chunk (Consumer) → stage and write, within one trace per job.
        var spans = receiver.Traces.SelectMany(t => t.ResourceSpans).SelectMany(r => r.ScopeSpans)
            .Where(s => s.Scope.Name == ChunkSegTelemetry.Name).SelectMany(s => s.Spans).ToList();
        var byId = spans.ToDictionary(s => s.SpanId);
        var jobs = spans.Where(s => s.Name == "job").ToList();
        var chunks = spans.Where(s => s.Name == "chunk").ToList();
        Assert.True(jobs.Count >= 2, $"{jobs.Count} job spans: the run makes several passes over the chunks");
        Assert.NotEmpty(chunks);
        foreach (var chunk in chunks)
        {
            Assert.True(byId.TryGetValue(chunk.ParentSpanId, out var job) && job.Name == "job", "a chunk span's parent is a job span");
            Assert.Equal(job.TraceId, chunk.TraceId);
            Assert.Equal(Span.Types.SpanKind.Consumer, chunk.Kind);
            Assert.IsType<long>(Attribute(chunk.Attributes, "chunkseg.chunk.index"));
            Assert.IsType<long>(Attribute(chunk.Attributes, "chunkseg.chunk.voxels"));
            Assert.Equal(1L, Attribute(chunk.Attributes, "chunkseg.chunk.attempt"));
            Assert.StartsWith("local-", (string)Attribute(chunk.Attributes, "chunkseg.worker")!);
            Assert.Equal(Attribute(job.Attributes, "chunkseg.job.id"), Attribute(chunk.Attributes, "chunkseg.job.id"));
            Assert.Equal(Attribute(job.Attributes, "chunkseg.stage"), Attribute(chunk.Attributes, "chunkseg.stage"));
            Assert.NotEqual(Status.Types.StatusCode.Error, chunk.Status?.Code ?? Status.Types.StatusCode.Unset);
        }
        foreach (var name in new[] { "stage", "write" })
        {
            var children = spans.Where(s => s.Name == name).ToList();
            Assert.Equal(chunks.Count, children.Count);
            Assert.All(children, s => Assert.Equal("chunk", byId[s.ParentSpanId].Name));
        }
        foreach (var job in jobs)
        {
            var mine = chunks.Where(c => c.ParentSpanId == job.SpanId).ToList();
            long total = (long)Attribute(job.Attributes, "chunkseg.chunks.total")!;
            Assert.Equal(8L, total);   // 32³ in chunks of 16³
            Assert.Equal(total, mine.Select(c => (long)Attribute(c.Attributes, "chunkseg.chunk.index")!).Distinct().Count());
            Assert.Equal(total, Attribute(job.Attributes, "chunkseg.chunks.processed"));
            Assert.Equal(0L, Attribute(job.Attributes, "chunkseg.chunks.failed"));
            Assert.Equal(Volume, mine.Sum(c => (long)Attribute(c.Attributes, "chunkseg.chunk.voxels")!));   // the cores tile the volume
            Assert.NotEqual(Status.Types.StatusCode.Error, job.Status?.Code ?? Status.Types.StatusCode.Unset);
        }

        // Metrics agree with the spans. Sums are cumulative: the last (largest) value of each series counts.
        var metrics = receiver.Metrics.SelectMany(m => m.ResourceMetrics).SelectMany(r => r.ScopeMetrics)
            .Where(s => s.Scope.Name == ChunkSegTelemetry.Name).SelectMany(s => s.Metrics).ToList();
        Assert.Equal(chunks.Count, LastSum(metrics, "chunkseg.chunks.completed"));
        Assert.Equal(Volume * jobs.Count, LastSum(metrics, "chunkseg.voxels.processed"));
        Assert.Equal("{voxel}", metrics.First(m => m.Name == "chunkseg.voxels.processed").Unit);
        Assert.DoesNotContain(metrics, m => m.Name == "chunkseg.chunks.failed" && m.Sum.DataPoints.Any(p => p.AsInt != 0));
        var durations = metrics.Where(m => m.Name == "chunkseg.stage.duration").ToList();
        Assert.NotEmpty(durations);
        Assert.All(durations, m => Assert.Equal(("s", Metric.DataOneofCase.Histogram), (m.Unit, m.DataCase)));
        var lastCounts = durations.SelectMany(m => m.Histogram.DataPoints).GroupBy(p => p.Attributes.ToString()).Select(g => g.Max(p => (long)p.Count));
        Assert.Equal(chunks.Count, lastCounts.Sum());
        var memory = metrics.Where(m => m.Name == "chunkseg.worker.memory").ToList();
        Assert.NotEmpty(memory);
        Assert.All(memory, m => Assert.Equal("By", m.Unit));
        Assert.Contains(memory, m => m.Gauge.DataPoints.Any(p => p.AsInt > 0));
    }

    [Fact]
    public async Task Every_command_exports_with_per_signal_variables_and_OTEL_SERVICE_NAME()
    {
        string raw = TestVolumes.WriteZarr(_dir, "v.zarr", "zyx", [4, 4, 4], Contracts.Volumes.DataType.UInt8, new byte[64]);
        await using var receiver = await OtlpReceiver.StartAsync();
        // Metrics only, to a URL used as given (no /v1/metrics appended), with the per-signal protocol.
        await Chunkseg(new()
        {
            ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = receiver.Endpoint + "/m",
            ["OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"] = "http/protobuf",
            ["OTEL_SERVICE_NAME"] = "chunkseg-telemetry-test",
        }, "info", raw);

        // `info` processes no chunk, but the process's gauges are exported.
        Assert.Empty(receiver.Traces);
        Assert.Empty(receiver.Refused);
        var resource = Assert.Single(receiver.Metrics.SelectMany(m => m.ResourceMetrics).Select(r => r.Resource).DistinctBy(r => r.ToString()));
        Assert.Equal("chunkseg-telemetry-test", Attribute(resource.Attributes, "service.name"));
        Assert.Contains(receiver.Metrics.SelectMany(m => m.ResourceMetrics).SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics),
            m => m.Name == "chunkseg.worker.memory");
    }

    /// <summary>Runs chunkseg.dll as its own process with <paramref name="variables"/> (and no other OTEL_*); it must succeed.</summary>
    private static async Task Chunkseg(Dictionary<string, string> variables, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "chunkseg.dll"), .. args]) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("OTEL_", StringComparison.Ordinal)).ToList()) start.Environment.Remove(key);
        foreach (var (key, value) in variables) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);
        await Task.WhenAll(stdout, stderr);
        Assert.True(process.ExitCode == 0, $"chunkseg {string.Join(' ', args)} exited {process.ExitCode}: {await stderr}");
    }

    private static async Task Ok(params string[] args)
    {
        var (code, _, err) = await Cli.Run(args);
        Assert.True(code == 0, $"chunkseg {string.Join(' ', args)} exited {code}: {err}");
    }

    /// <summary>An attribute's value (string, long, double or bool), or null when absent.</summary>
    internal static object? Attribute(RepeatedField<KeyValue> attributes, string key) =>
        attributes.FirstOrDefault(a => a.Key == key)?.Value switch
        {
            null => null,
            { ValueCase: AnyValue.ValueOneofCase.StringValue } v => v.StringValue,
            { ValueCase: AnyValue.ValueOneofCase.IntValue } v => v.IntValue,
            { ValueCase: AnyValue.ValueOneofCase.DoubleValue } v => v.DoubleValue,
            { ValueCase: AnyValue.ValueOneofCase.BoolValue } v => v.BoolValue,
            var v => v.ToString(),
        };

    /// <summary>The total of a cumulative integer sum: the largest value of each series, added up.</summary>
    private static long LastSum(List<Metric> metrics, string name)
    {
        var sums = metrics.Where(m => m.Name == name).ToList();
        Assert.True(sums.Count > 0, $"no {name} exported");
        Assert.All(sums, m => Assert.Equal((Metric.DataOneofCase.Sum, AggregationTemporality.Cumulative, true),
            (m.DataCase, m.Sum.AggregationTemporality, m.Sum.IsMonotonic)));
        return sums.SelectMany(m => m.Sum.DataPoints).GroupBy(p => p.Attributes.ToString()).Sum(g => g.Max(p => p.AsInt));
    }

    /// <summary>
    /// A loopback OTLP/HTTP receiver (HttpListener on 127.0.0.1, a free port): keeps every export it is sent.
    /// (Not Kestrel: the ASP.NET Core framework reference would drop the Microsoft.Extensions.* assemblies the
    /// chunkseg.dll copied here needs when run as its own process.)
    /// </summary>
    internal sealed class OtlpReceiver : IAsyncDisposable
    {
        private readonly HttpListener _listener;
        private readonly Task _serving;

        private OtlpReceiver(HttpListener listener, string endpoint)
        {
            _listener = listener;
            Endpoint = endpoint;
            _serving = Task.Run(ServeAsync);
        }

        /// <summary>The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it (the exporter appends /v1/traces, /v1/metrics).</summary>
        public string Endpoint { get; }
        public ConcurrentQueue<ExportTraceServiceRequest> Traces { get; } = new();
        public ConcurrentQueue<ExportMetricsServiceRequest> Metrics { get; } = new();
        /// <summary>Requests to any other path (answered 404).</summary>
        public ConcurrentQueue<string> Refused { get; } = new();

        public static Task<OtlpReceiver> StartAsync()
        {
            for (int attempt = 0; ; attempt++)
            {
                // A port the system says is free; another process may take it before the listener does, so retry.
                var probe = new TcpListener(IPAddress.Loopback, 0);
                probe.Start();
                int port = ((IPEndPoint)probe.LocalEndpoint).Port;
                probe.Stop();
                var listener = new HttpListener();
                listener.Prefixes.Add($"http://127.0.0.1:{port}/");
                try
                {
                    listener.Start();
                    return Task.FromResult(new OtlpReceiver(listener, $"http://127.0.0.1:{port}"));
                }
                catch (HttpListenerException) when (attempt < 5)
                {
                    listener.Close();
                }
            }
        }

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                var (request, response) = (context.Request, context.Response);
                byte[] body = await Body(request);
                switch (request.HttpMethod, request.Url!.AbsolutePath)
                {
                    case ("POST", "/v1/traces" or "/t"): Traces.Enqueue(ExportTraceServiceRequest.Parser.ParseFrom(body)); break;
                    case ("POST", "/v1/metrics" or "/m"): Metrics.Enqueue(ExportMetricsServiceRequest.Parser.ParseFrom(body)); break;
                    default: Refused.Enqueue($"{request.HttpMethod} {request.Url.AbsolutePath}"); response.StatusCode = 404; break;
                }
                response.ContentType = "application/x-protobuf";   // an empty Export*ServiceResponse
                response.ContentLength64 = 0;
                response.Close();
            }
        }

        private static async Task<byte[]> Body(HttpListenerRequest request)
        {
            using var buffer = new MemoryStream();
            var body = request.Headers["Content-Encoding"] == "gzip" ? new GZipStream(request.InputStream, CompressionMode.Decompress) : request.InputStream;
            await body.CopyToAsync(buffer);
            return buffer.ToArray();
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _serving;
            _listener.Close();
        }
    }
}
