using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Contracts.Telemetry;

/// <summary>
/// ChunkSeg's traces and metrics, through the runtime's own <see cref="ActivitySource"/> and <see cref="Meter"/>:
/// with no listener (no exporter started) every span is null and every measurement is dropped at almost no cost.
/// The CLI exports both by OTLP when the standard OTEL_EXPORTER_OTLP_* variables are set.
/// <code>
///   job   (coordinator, one per stage pass: chunkseg.job.id, chunkseg.stage, chunkseg.chunks.total/processed/failed)
///    └ chunk (worker, kind Consumer: chunkseg.chunk.index, .attempt, .voxels, chunkseg.worker)
///       ├ stage (the stage's compute on the chunk's read box)
///       └ write (the chunk's core written to the output)
/// </code>
/// Across machines the chunk's parent travels in the chunk message as W3C traceparent/tracestate
/// (<see cref="Inject"/>, <see cref="Extract"/>).
/// </summary>
public static class ChunkSegTelemetry
{
    public const string Name = "ChunkSeg";

    private static readonly string? Version =
        typeof(ChunkSegTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    public static ActivitySource Source { get; } = new(Name, Version);
    public static Meter Meter { get; } = new(Name, Version);

    /// <summary>Chunks whose core was written (tags <c>stage</c>, <c>worker</c>).</summary>
    public static Counter<long> ChunksCompleted { get; } =
        Meter.CreateCounter<long>("chunkseg.chunks.completed", "{chunk}", "Chunks whose core was written");

    /// <summary>
    /// Chunk attempts that failed (tags <c>stage</c>, <c>worker</c>); a retried chunk can count more than once. Counted where
    /// the answers arrive (the coordinator, or the embedded run), so a chunk whose node died counts too.
    /// </summary>
    public static Counter<long> ChunksFailed { get; } =
        Meter.CreateCounter<long>("chunkseg.chunks.failed", "{chunk}", "Chunk attempts that failed");

    /// <summary>Core voxels written (tag <c>stage</c>).</summary>
    public static Counter<long> VoxelsProcessed { get; } =
        Meter.CreateCounter<long>("chunkseg.voxels.processed", "{voxel}", "Core voxels written");

    /// <summary>Seconds per completed chunk: read, compute and write (tags <c>stage</c>, <c>worker</c>).</summary>
    public static Histogram<double> StageDuration { get; } =
        Meter.CreateHistogram("chunkseg.stage.duration", "s", "Seconds to process one chunk (read, compute, write)", tags: null,
            // Seconds, not the SDK's default millisecond-scale buckets (0 – 10,000).
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] });

    private static Func<long?>? _gpuMemory;

    private static Func<IEnumerable<(string Role, string Status, long Count)>>? _members;
    private static Func<IEnumerable<(string Node, string State, long InFlight, long Shards)>>? _nodes;
    private static Func<IEnumerable<(string Job, string State, IReadOnlyList<PassStatus> Passes)>>? _jobs;

    /// <summary>Cluster members by role and status (tags <c>role</c>, <c>status</c>), as this member sees them.</summary>
    public static ObservableGauge<long> ClusterMembers { get; } =
        Meter.CreateObservableGauge("chunkseg.cluster.members", () => Observe(_members, m => new Measurement<long>(m.Count,
            new KeyValuePair<string, object?>("role", m.Role), new KeyValuePair<string, object?>("status", m.Status))), "{member}", "Cluster members by role and status");

    /// <summary>Each gpu-node the coordinator knows, 1 in its state (tags <c>node</c>, <c>state</c>: up, draining or gone).</summary>
    public static ObservableGauge<long> ClusterNodes { get; } =
        Meter.CreateObservableGauge("chunkseg.cluster.nodes", () => Observe(_nodes, n => new Measurement<long>(1,
            new KeyValuePair<string, object?>("node", n.Node), new KeyValuePair<string, object?>("state", n.State))), "{node}", "gpu-nodes the coordinator knows, by state");

    /// <summary>Chunks a gpu-node holds for the coordinator (tag <c>node</c>); reported by the coordinator.</summary>
    public static ObservableGauge<long> ChunksInFlight { get; } =
        Meter.CreateObservableGauge("chunkseg.chunks.in_flight", () => Observe(_nodes, n => new Measurement<long>(n.InFlight,
            new KeyValuePair<string, object?>("node", n.Node))), "{chunk}", "Chunks sent to a gpu-node and not yet answered");

    /// <summary>Shards of the chunk region each gpu-node hosts (tag <c>node</c>); reported by the coordinator.</summary>
    public static ObservableGauge<long> ShardsPerNode { get; } =
        Meter.CreateObservableGauge("chunkseg.cluster.shards", () => Observe(_nodes, n => new Measurement<long>(n.Shards,
            new KeyValuePair<string, object?>("node", n.Node))), "{shard}", "Shards of the chunk region hosted by a gpu-node");

    /// <summary>Feeds the cluster gauges (called at each collection; keep them cheap). Null stops them.</summary>
    public static void SetClusterSources(Func<IEnumerable<(string Role, string Status, long Count)>>? members,
        Func<IEnumerable<(string Node, string State, long InFlight, long Shards)>>? nodes)
    {
        Volatile.Write(ref _members, members);
        Volatile.Write(ref _nodes, nodes);
    }

    /// <summary>Jobs the coordinator knows, by state (tag <c>state</c>: queued, running, done, failed, cancelled).</summary>
    public static ObservableGauge<long> Jobs { get; } =
        Meter.CreateObservableGauge("chunkseg.jobs", ObserveJobStates, "{job}", "Jobs the coordinator knows, by state");

    /// <summary>
    /// Chunks of each pass of the coordinator's jobs (tags <c>job.id</c>, <c>pass</c>, <c>stage</c>, <c>state</c>: total, done,
    /// failed, resent); the jobs the coordinator tracks (running ones and the latest finished).
    /// </summary>
    public static ObservableGauge<long> JobChunks { get; } =
        Meter.CreateObservableGauge("chunkseg.job.chunks", ObserveJobChunks, "{chunk}", "Chunks of a job's pass, by state");

    /// <summary>Seconds until a running pass ends at its rate so far (tags <c>job.id</c>, <c>pass</c>, <c>stage</c>), once known.</summary>
    public static ObservableGauge<double> JobTimeLeft { get; } =
        Meter.CreateObservableGauge("chunkseg.job.time_left", ObserveTimeLeft, "s", "Seconds until a running pass ends, at its rate so far");

    /// <summary>Feeds the job gauges from the active coordinator's jobs (called at each collection). Null stops them.</summary>
    public static void SetJobSource(Func<IEnumerable<(string Job, string State, IReadOnlyList<PassStatus> Passes)>>? jobs) =>
        Volatile.Write(ref _jobs, jobs);

    private static IEnumerable<Measurement<long>> ObserveJobStates() =>
        Volatile.Read(ref _jobs)?.Invoke().GroupBy(j => j.State).Select(g => new Measurement<long>(g.LongCount(),
            new KeyValuePair<string, object?>("state", g.Key))).ToArray() ?? [];

    private static IEnumerable<Measurement<long>> ObserveJobChunks()
    {
        var measurements = new List<Measurement<long>>();
        foreach (var (job, _, passes) in Volatile.Read(ref _jobs)?.Invoke() ?? [])
            foreach (var pass in passes)
                foreach (var (state, count) in new[] { ("total", pass.ChunksTotal), ("done", pass.ChunksDone), ("failed", pass.ChunksFailed), ("resent", pass.ChunksResent) })
                    measurements.Add(new Measurement<long>(count, PassTags(job, pass, ("state", state))));
        return measurements;
    }

    private static IEnumerable<Measurement<double>> ObserveTimeLeft() =>
        (Volatile.Read(ref _jobs)?.Invoke() ?? []).SelectMany(j => j.Passes.Where(p => p.State == "running" && p.SecondsLeft is not null)
            .Select(p => new Measurement<double>(p.SecondsLeft!.Value, PassTags(j.Job, p)))).ToArray();

    private static KeyValuePair<string, object?>[] PassTags(string job, PassStatus pass, params (string Key, string Value)[] more) =>
        [new("job.id", job), new("pass", pass.Pass), new("stage", pass.Stage), .. more.Select(m => new KeyValuePair<string, object?>(m.Key, m.Value))];

    private static IEnumerable<Measurement<long>> Observe<T>(Func<IEnumerable<T>>? source, Func<T, Measurement<long>> measure) =>
        source is null ? [] : source().Select(measure).ToArray();

    /// <summary>This process's working set.</summary>
    public static ObservableGauge<long> WorkerMemory { get; } =
        Meter.CreateObservableGauge("chunkseg.worker.memory", () => Environment.WorkingSet, "By", "Working set of this process");

    /// <summary>Device memory in use; reports nothing until <see cref="SetGpuMemorySource"/>.</summary>
    public static ObservableGauge<long> GpuMemory { get; } =
        Meter.CreateObservableGauge("chunkseg.gpu.memory", ObserveGpuMemory, "By", "GPU memory in use");

    /// <summary>Feeds <c>chunkseg.gpu.memory</c> (null from the function: nothing to report now). Null stops it.</summary>
    public static void SetGpuMemorySource(Func<long?>? source) => Volatile.Write(ref _gpuMemory, source);

    private static IEnumerable<Measurement<long>> ObserveGpuMemory() =>
        Volatile.Read(ref _gpuMemory)?.Invoke() is { } bytes ? [new Measurement<long>(bytes)] : [];

    /// <summary>
    /// <paramref name="activity"/>'s context as W3C <c>traceparent</c> and <c>tracestate</c>, the fields a chunk message
    /// carries across processes; nulls when there is no activity.
    /// </summary>
    public static (string? TraceParent, string? TraceState) Inject(Activity? activity)
    {
        if (activity is null || activity.TraceId == default) return (null, null);
        string parent = $"00-{activity.TraceId.ToHexString()}-{activity.SpanId.ToHexString()}-{(activity.ActivityTraceFlags.HasFlag(ActivityTraceFlags.Recorded) ? "01" : "00")}";
        return (parent, string.IsNullOrEmpty(activity.TraceStateString) ? null : activity.TraceStateString);
    }

    /// <summary>The remote parent a message carries, or default when there is none or it is malformed.</summary>
    public static ActivityContext Extract(string? traceParent, string? traceState) =>
        traceParent is not null && ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
}
