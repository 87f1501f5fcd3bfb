using ChunkSeg.Contracts.Memory;
using ChunkSeg.Contracts.Volumes;
using System.Diagnostics;
using ChunkSeg.Contracts.Errors;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.GpuNode.Internal;
using ChunkSeg.Storage.Internal;
using ChunkSeg.GpuNode.Stages;
using ChunkSeg.Storage;

namespace ChunkSeg.GpuNode.Hosting;

/// <summary>
/// What a chunk of a job does when its result is not a core of an output volume (a mesh piece in the job's workspace,
/// say): does the work, makes it durable, and returns a CRC-32C of what it wrote.
/// </summary>
public delegate uint ChunkAction(ChunkSpec chunk);

/// <summary>
/// Runs one job's stage on chunks: lease a chunk, run the stage on its read box, write its core,
/// and reply with a CRC-32C of what was written. Thread-safe: one instance serves all worker threads.
/// </summary>
public sealed class ChunkWorker
{
    private readonly JobSpec _job;
    private readonly ChunkAction _action;
    private readonly ChunkGrid _grid;
    private readonly string _name;

    /// <summary>A worker whose chunks write their cores into <paramref name="output"/>.</summary>
    public ChunkWorker(JobSpec job, IChunkStage stage, IVolume? input, IVolume output, string name)
        : this(job, new ChunkGrid(output.Info.SpatialShape, output.Info.TimePoints, job.ChunkShape, job.Halo), chunk => WriteCore(chunk, stage, input, output), name)
    {
    }

    /// <summary>A worker whose chunks store their own results (<paramref name="action"/>), over <paramref name="grid"/>.</summary>
    public ChunkWorker(JobSpec job, ChunkGrid grid, ChunkAction action, string name)
    {
        _job = job;
        _grid = grid;
        _action = action;
        _name = name;
    }

    public ChunkGrid Grid => _grid;

    /// <summary>Processes one chunk and returns <see cref="ChunkCompleted"/> or <see cref="ChunkFailed"/>; never throws.</summary>
    public object Process(ProcessChunk command) => Process(command, default);

    /// <summary>
    /// As <see cref="Process(ProcessChunk)"/>, traced as a <c>chunk</c> span under <paramref name="parent"/> (a context
    /// carried by the message; default: <see cref="Activity.Current"/>).
    /// </summary>
    public object Process(ProcessChunk command, ActivityContext parent)
    {
        var clock = Stopwatch.StartNew();
        using var span = ChunkSegTelemetry.Source.StartActivity("chunk", ActivityKind.Consumer, parent)
            ?.SetTag("chunkseg.job.id", _job.Id.Value).SetTag("chunkseg.stage", _job.Stage).SetTag("chunkseg.chunk.index", command.Chunk.Value)
            .SetTag("chunkseg.chunk.attempt", command.Attempt).SetTag("chunkseg.worker", _name);
        var tags = new TagList { { "stage", _job.Stage }, { "worker", _name } };
        try
        {
            var chunk = _grid.Get(command.Chunk);
            span?.SetTag("chunkseg.chunk.voxels", chunk.Core.VoxelCount);
            uint checksum = _action(chunk);
            var done = new ChunkCompleted(_job.Id, command.Chunk, command.Attempt, chunk.Core.VoxelCount, checksum, clock.Elapsed, _name);
            ChunkSegTelemetry.ChunksCompleted.Add(1, tags);
            ChunkSegTelemetry.VoxelsProcessed.Add(done.Voxels, new KeyValuePair<string, object?>("stage", _job.Stage));
            ChunkSegTelemetry.StageDuration.Record(done.Elapsed.TotalSeconds, tags);
            return done;
        }
        catch (ChunkSegException e)
        {
            // Data errors (corrupt chunk, unsupported dtype) fail the same way every time: do not retry.
            return Failed(span, e, new ChunkFailed(_job.Id, command.Chunk, command.Attempt, e.Message, Retryable: false, _name));
        }
        catch (IOException e)
        {
            return Failed(span, e, new ChunkFailed(_job.Id, command.Chunk, command.Attempt, $"I/O error: {e.Message}", Retryable: true, _name));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Failed(span, e, new ChunkFailed(_job.Id, command.Chunk, command.Attempt, $"{e.GetType().Name}: {e.Message}", Retryable: true, _name));
        }
    }

    /// <summary>Runs <paramref name="stage"/> on the chunk and writes its core; the CRC is over the core's bytes.</summary>
    private static uint WriteCore(ChunkSpec chunk, IChunkStage stage, IVolume? input, IVolume output)
    {
        var info = output.Info;
        var box = BoxLayout.ForChunk(info.Axes, info.Shape, chunk.TimePoint, chunk.Core);
        int bytes = checked((int)(box.ElementCount * info.DataType.SizeInBytes()));
        byte[] buffer = ChunkBufferPool<byte>.Shared.Rent(bytes);
        try
        {
            var core = buffer.AsSpan(0, bytes);
            using (ChunkSegTelemetry.Source.StartActivity("stage")) stage.Process(chunk, input, output, buffer.AsMemory(0, bytes));
            using (ChunkSegTelemetry.Source.StartActivity("write")) output.Write(box, core);
            return Crc32C.Compute(core);
        }
        finally
        {
            ChunkBufferPool<byte>.Shared.Return(buffer);
        }
    }

    private static ChunkFailed Failed(Activity? span, Exception e, ChunkFailed failed)
    {
        span?.AddException(e).SetStatus(ActivityStatusCode.Error, failed.Reason);
        return failed;
    }
}
