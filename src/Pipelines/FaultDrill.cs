using System.Diagnostics;
using System.Globalization;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Messages;

namespace ChunkSeg.Pipelines;

/// <summary>
/// A fault a worker injects on purpose, for drills of the failure paths on a real cluster (and their tests): set
/// <c>CHUNKSEG_FAULT_DRILL=STAGE:CHUNK:crash</c> and the worker kills itself (SIGKILL, as the kernel's OOM killer would)
/// whenever it is handed that chunk of a pass of that stage; <c>…:error</c> makes it fail that chunk as a data error.
/// Unset, nothing is wrapped.
/// </summary>
public sealed record FaultDrill(string Stage, long Chunk, bool Crash)
{
    public const string Variable = "CHUNKSEG_FAULT_DRILL";

    public static FaultDrill? FromEnvironment()
    {
        string? text = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(text)) return null;
        var parts = text.Split(':');
        if (parts.Length != 3 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long chunk) || parts[2] is not ("crash" or "error"))
            throw new UsageException($"{Variable}={text}: expected STAGE:CHUNK:crash or STAGE:CHUNK:error (for example label:5:crash)");
        return new FaultDrill(parts[0], chunk, parts[2] == "crash");
    }

    /// <summary>The processor of a pass, with the fault in place when the pass is of the drill's stage.</summary>
    public IJobProcessor Wrap(JobSpec spec, IJobProcessor processor) => spec.Stage == Stage ? new Faulty(this, processor) : processor;

    private sealed class Faulty(FaultDrill drill, IJobProcessor inner) : IJobProcessor
    {
        public object Process(ProcessChunk command, ActivityContext parent)
        {
            if (command.Chunk.Value != drill.Chunk) return inner.Process(command, parent);
            if (drill.Crash)
            {
                Console.Error.WriteLine($"{Variable}: killing this worker on chunk {drill.Chunk} of {drill.Stage}");
                System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            return new ChunkFailed(command.Job, command.Chunk, command.Attempt, $"{Variable}: chunk {drill.Chunk} fails on purpose", Retryable: false, "drill");
        }

        public void Dispose() => inner.Dispose();
    }
}
