using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Pipelines;

/// <summary>
/// A fault a gpu-node injects on purpose, for drills of the failure paths on a real cluster (and their tests):
/// <code>
///   CHUNKSEG_FAULT_DRILL=STAGE:CHUNK:crash    the node kills itself (SIGKILL, as the OOM killer would) when handed that chunk
///   CHUNKSEG_FAULT_DRILL=STAGE:CHUNK:error    the node fails that chunk as a data error
///   CHUNKSEG_FAULT_DRILL=STAGE:*:latency:MS   every chunk of that stage takes MS milliseconds longer (a device's time; a
///                                             node given three times the others' latency is a straggler)
/// </code>
/// STAGE is a pass's stage (label, relabel, mesh, …). Several faults are separated by commas (label:5:error,label:*:latency:200:
/// chunk 5 fails, every chunk is slow). Unset, nothing is wrapped.
/// </summary>
public sealed record FaultDrill(string Stage, long? Chunk, string Kind, int LatencyMs)
{
    public const string Variable = "CHUNKSEG_FAULT_DRILL";

    /// <summary>The faults the variable asks for (none when it is unset).</summary>
    public static IReadOnlyList<FaultDrill> FromEnvironment() =>
        Environment.GetEnvironmentVariable(Variable) is { } text && !string.IsNullOrWhiteSpace(text)
            ? [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Parse)]
            : [];

    private static FaultDrill Parse(string text)
    {
        var parts = text.Split(':');
        var ci = CultureInfo.InvariantCulture;
        if (parts.Length == 3 && parts[2] is "crash" or "error" && long.TryParse(parts[1], NumberStyles.None, ci, out long chunk))
            return new FaultDrill(parts[0], chunk, parts[2], 0);
        if (parts.Length == 4 && parts[1] == "*" && parts[2] == "latency" && int.TryParse(parts[3], NumberStyles.None, ci, out int ms))
            return new FaultDrill(parts[0], null, "latency", ms);
        throw new UsageException($"{Variable}={text}: expected STAGE:CHUNK:crash, STAGE:CHUNK:error or STAGE:*:latency:MS (for example label:5:crash, label:*:latency:150)");
    }

    /// <summary>The processor of a pass, with the fault in place when the pass is of the drill's stage.</summary>
    private IJobProcessor Wrap(JobSpec spec, IJobProcessor processor) => spec.Stage == Stage ? new Faulty(this, processor) : processor;

    /// <summary>The processor of a pass with every fault of <paramref name="drills"/> in place.</summary>
    public static IJobProcessor WrapAll(IReadOnlyList<FaultDrill> drills, JobSpec spec, IJobProcessor processor) =>
        drills.Aggregate(processor, (inner, drill) => drill.Wrap(spec, inner));

    private sealed class Faulty(FaultDrill drill, IJobProcessor inner) : IJobProcessor
    {
        public object Process(ProcessChunk command, ActivityContext parent)
        {
            if (drill.Kind == "latency")
            {
                var clock = Stopwatch.StartNew();
                var result = inner.Process(command, parent);
                Thread.Sleep(drill.LatencyMs);
                return result is ChunkCompleted done ? done with { Elapsed = clock.Elapsed } : result;
            }
            if (command.Chunk.Value != drill.Chunk) return inner.Process(command, parent);
            if (drill.Kind == "crash")
            {
                Console.Error.WriteLine($"{Variable}: killing this worker on chunk {drill.Chunk} of {drill.Stage}");
                System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            return new ChunkFailed(command.Job, command.Chunk, command.Attempt, $"{Variable}: chunk {drill.Chunk} fails on purpose", Retryable: false, "drill");
        }

        public void Dispose() => inner.Dispose();
    }
}
