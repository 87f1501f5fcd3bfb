using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

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

    /// <summary>Chunk attempts that failed (tags <c>stage</c>, <c>worker</c>); a retried chunk can count more than once.</summary>
    public static Counter<long> ChunksFailed { get; } =
        Meter.CreateCounter<long>("chunkseg.chunks.failed", "{chunk}", "Chunk attempts that failed");

    /// <summary>Core voxels written (tag <c>stage</c>).</summary>
    public static Counter<long> VoxelsProcessed { get; } =
        Meter.CreateCounter<long>("chunkseg.voxels.processed", "{voxel}", "Core voxels written");

    /// <summary>Seconds per completed chunk: read, compute and write (tag <c>stage</c>).</summary>
    public static Histogram<double> StageDuration { get; } =
        Meter.CreateHistogram<double>("chunkseg.stage.duration", "s", "Seconds to process one chunk (read, compute, write)");

    private static Func<long?>? _gpuMemory;

    private static Func<IEnumerable<(string Role, string Status, long Count)>>? _members;
    private static Func<IEnumerable<(string Node, long InFlight, long Shards)>>? _nodes;

    /// <summary>Cluster members by role and status (tags <c>role</c>, <c>status</c>), as this member sees them.</summary>
    public static ObservableGauge<long> ClusterMembers { get; } =
        Meter.CreateObservableGauge("chunkseg.cluster.members", () => Observe(_members, m => new Measurement<long>(m.Count,
            new KeyValuePair<string, object?>("role", m.Role), new KeyValuePair<string, object?>("status", m.Status))), "{member}", "Cluster members by role and status");

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
        Func<IEnumerable<(string Node, long InFlight, long Shards)>>? nodes)
    {
        Volatile.Write(ref _members, members);
        Volatile.Write(ref _nodes, nodes);
    }

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
