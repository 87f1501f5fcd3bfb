using System.Diagnostics;
using ChunkSeg.Contracts.Geometry;
using ChunkSeg.Contracts.Messages;
using ChunkSeg.Contracts.Telemetry;
using ChunkSeg.Coordinator.Manifest;
using Microsoft.Extensions.Logging;

namespace ChunkSeg.Coordinator.Execution;

/// <summary>Where a job stands, reported after every finished chunk.</summary>
public sealed record JobProgress(long ChunksDone, long ChunksTotal, long VoxelsDone, long VoxelsTotal, TimeSpan Elapsed)
{
    public double VoxelsPerSecond => Elapsed.TotalSeconds > 0 ? VoxelsDone / Elapsed.TotalSeconds : 0;
}

/// <summary>How a job ended. <see cref="IsComplete"/> only when every chunk is recorded in the manifest.</summary>
/// <see cref="Duplicates"/>: completions of chunks already recorded (a transport that resends or copies a straggler), ignored.
public sealed record JobResult(long ChunksTotal, long ChunksProcessed, long ChunksSkipped, IReadOnlyList<ChunkFailed> Failed, long VoxelsProcessed, TimeSpan Elapsed,
    long Duplicates = 0)
{
    public bool IsComplete => Failed.Count == 0 && ChunksProcessed + ChunksSkipped == ChunksTotal;
}

/// <summary>
/// The coordinator's loop: enumerate chunks lazily, skip the ones the manifest has, send the rest through the
/// transport with backpressure, record each completion durably, retry retryable failures a bounded number of
/// times. Work is never dropped: every chunk ends recorded in the manifest or listed in <see cref="JobResult.Failed"/>.
/// </summary>
public sealed class JobRunner(IChunkTransport transport, ILogger logger, int maxAttempts = 3)
{
    public async Task<JobResult> RunAsync(JobSpec job, ChunkGrid grid, ChunkManifest manifest,
        IProgress<JobProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxAttempts);
        var clock = Stopwatch.StartNew();
        long skipped = manifest.DoneCount;
        long pending = grid.Count - skipped;
        long processed = 0, voxels = 0, duplicates = 0;
        long voxelsSkipped = 0;
        var failed = new List<ChunkFailed>();
        // One bit per chunk (not a set of ids): 2.5 million chunks cost 300 kB, whatever the volume size.
        var resolved = new System.Collections.BitArray(checked((int)grid.Count));
        long resolvedCount = 0;
        logger.LogInformation("Job {Job}: {Chunks} chunks of {ChunkShape} (+halo {Halo}), {Skipped} already done",
            job.Id, grid.Count, grid.ChunkShape, grid.Halo, skipped);
        // Current from here on: the workers and the producer (started below) capture it, so chunk spans are its children.
        using var span = ChunkSegTelemetry.Source.StartActivity("job")
            ?.SetTag("chunkseg.job.id", job.Id.Value).SetTag("chunkseg.stage", job.Stage).SetTag("chunkseg.chunks.total", grid.Count).SetTag("chunkseg.chunks.skipped", skipped);

        await transport.StartAsync(job, grid, cancellationToken).ConfigureAwait(false);
        using var producerStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var producerToken = producerStop.Token;

        // Retries go back through the same queue the producer feeds, so they also respect backpressure.
        var retries = System.Threading.Channels.Channel.CreateUnbounded<ProcessChunk>();
        var producer = Task.Run(async () =>
        {
            for (long i = 0; i < grid.Count; i++)
            {
                producerToken.ThrowIfCancellationRequested();
                while (retries.Reader.TryRead(out var retry))
                    await transport.SendAsync(retry, producerToken).ConfigureAwait(false);
                if (manifest.IsDone(i))
                {
                    Interlocked.Add(ref voxelsSkipped, grid[i].Core.VoxelCount);
                    transport.Recorded(i);
                    continue;
                }
                await transport.SendAsync(new ProcessChunk(job.Id, new ChunkId(i), 1), producerToken).ConfigureAwait(false);
            }
            await foreach (var retry in retries.Reader.ReadAllAsync(producerToken).ConfigureAwait(false))
                await transport.SendAsync(retry, producerToken).ConfigureAwait(false);
        }, producerToken);

        long voxelsTotal = grid.VolumeShape.Volume * grid.TimePoints;
        if (pending == 0) retries.Writer.Complete();
        else
        {
            await foreach (var message in transport.Results(cancellationToken).ConfigureAwait(false))
            {
                switch (message)
                {
                    case ChunkCompleted done when done.Job == job.Id:
                        if (resolved[(int)done.Chunk.Value] || !manifest.MarkDone(done.Chunk.Value, done.Checksum, done.Voxels, done.Worker))
                        {
                            logger.LogDebug("Ignoring duplicate completion of {Chunk} from {Worker}", done.Chunk, done.Worker);
                            duplicates++;
                            break;
                        }
                        resolved[(int)done.Chunk.Value] = true;
                        resolvedCount++;
                        processed++;
                        voxels += done.Voxels;
                        progress?.Report(new JobProgress(processed + skipped, grid.Count, voxels + Interlocked.Read(ref voxelsSkipped), voxelsTotal, clock.Elapsed));
                        break;
                    case ChunkFailed fail when fail.Job == job.Id:
                        if (resolved[(int)fail.Chunk.Value]) break;
                        ChunkSegTelemetry.ChunksFailed.Add(1, new KeyValuePair<string, object?>("stage", job.Stage), new KeyValuePair<string, object?>("worker", fail.Worker));
                        if (fail.Retryable && fail.Attempt < maxAttempts)
                        {
                            logger.LogWarning("Chunk {Chunk} failed on {Worker} (attempt {Attempt}): {Reason}; retrying", fail.Chunk, fail.Worker, fail.Attempt, fail.Reason);
                            retries.Writer.TryWrite(new ProcessChunk(job.Id, fail.Chunk, fail.Attempt + 1));
                            break;
                        }
                        logger.LogError("Chunk {Chunk} failed on {Worker} after {Attempt} attempt(s): {Reason}", fail.Chunk, fail.Worker, fail.Attempt, fail.Reason);
                        resolved[(int)fail.Chunk.Value] = true;
                        resolvedCount++;
                        failed.Add(fail);
                        break;
                }
                if (resolvedCount == pending)
                {
                    retries.Writer.TryComplete();
                    break;
                }
            }
        }
        if (resolvedCount < pending)
        {
            // The workers went away without answering for some chunks: those are failures, never silently lost.
            await producerStop.CancelAsync().ConfigureAwait(false);
            for (long i = 0; i < grid.Count; i++)
                if (!manifest.IsDone(i) && !resolved[(int)i])
                    failed.Add(new ChunkFailed(job.Id, new ChunkId(i), 0, "no worker replied before the transport closed", Retryable: true, Worker: "-"));
        }
        try
        {
            await producer.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (producerStop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
        }
        await transport.CompleteAsync().ConfigureAwait(false);

        var result = new JobResult(grid.Count, processed, skipped, failed, voxels, clock.Elapsed, duplicates);
        span?.SetTag("chunkseg.chunks.processed", processed).SetTag("chunkseg.chunks.failed", failed.Count);
        if (failed.Count > 0) span?.SetStatus(ActivityStatusCode.Error, $"{failed.Count} chunk(s) failed");
        logger.LogInformation("Job {Job} finished: {Processed} processed, {Skipped} skipped, {Failed} failed, {Duplicates} duplicate(s) ignored in {Elapsed}",
            job.Id, processed, skipped, failed.Count, duplicates, clock.Elapsed);
        return result;
    }
}
